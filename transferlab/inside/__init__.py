"""Inside a pretrained CNN (part 1 of the study): per-layer parameters, shapes, receptive fields
and MACs (``inspect.py``, with the conv arithmetic in ``convarith.py``), top-k predictions on
held-out images and photos (``predict.py``), feature maps after the first convolution and deeper
(``featuremaps.py``), and the FC layers rewritten as convolutions (``fcn.py``).

Stages: ``inspect@<arch>``, ``predict``, ``featuremaps``, ``fcn``; their params sections live in
the torch-free ``params.py``.
"""
