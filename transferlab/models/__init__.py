"""Backbones: the registry (``registry.py``: build, save, load), weights, named cut points
(``archs.py`` torch-free tables, resolved by ``cutpoints.py``), the ``Backbone`` wrapper, the small
VGG the pipeline pretrains (``vgg_mini.py``), and materialising a registry entry into
``data/models/<name>`` (``pretrain.py``; its params ``BackboneEntry``, ``PretrainParams`` in ``params.py``).

Stage: ``pretrain@<backbone>``; every stage that builds or loads a network reads it (extract,
finetune, inspect, predict, featuremaps, fcn, the explain stages, gan).
"""
