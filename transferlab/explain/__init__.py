"""Explaining and attacking a classifier (part 4 of the study): saliency maps, targeted
adversarial examples and FGSM, class visualization, accuracy under corruption and the most
confident mistakes. Everything works in the model's input pixel space ([0, 1], see
:mod:`transferlab.explain.common`).

Stages: ``saliency@<backbone>``, ``adversarial@...``, ``fgsm@...``, ``classvis@...``, ``robustness@...``;
their params sub-sections (``explain.*``) live in the torch-free ``params.py``.
"""
