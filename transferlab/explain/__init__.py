"""Explaining and attacking a classifier: saliency, adversarial examples, FGSM, class
visualization, corruption robustness. Everything works in the model's input pixel space
([0, 1], see :mod:`transferlab.explain.common`)."""
