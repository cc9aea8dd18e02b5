"""The shared supervised training machinery: the one loop ``fit`` / ``evaluate`` /
``predict_logits`` (``loop.py``) and resumable checkpoints keyed by params and inputs
(``checkpoint.py``); ``params.py`` holds ``OptimParams`` and the ``resume`` section (torch-free).

Stages: ``pretrain@<backbone>``, ``finetune@...``, ``scratch@...`` (the loop and checkpoints),
``predict`` (``predict_logits``) and ``gan@<variant>`` (checkpoints).
"""
