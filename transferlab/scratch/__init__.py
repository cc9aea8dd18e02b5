"""Training from scratch (part 5 of the study): the course's first networks (linear softmax,
MLP, small CNNs, ReLU vs sigmoid) trained with the shared loop (``run.py``), and the
iterations each needs to reach a training accuracy (``convergence.py``).

Stage: ``scratch@<dataset>-<model>``; its params section lives in the torch-free ``params.py``.
"""
