"""Transfer by feature extraction and by fine-tuning (parts 2 and 3 of the study): one forward
pass for every cut layer (``features.py``, ``extraction.py``) into the float16 feature cache
(``feature_cache.py``); SVM / PCA grids on precomputed Gram matrices and a softmax head on it
(``classify.py``, ``grid.py``, ``pca.py``, ``rows.py``, ``heads.py``); a t-SNE picture of one layer
(``tsne.py``); replacing the last layer and training the head or everything (``finetune.py``).

Stages: ``extract@<dataset>-<backbone>``, ``classify@...``, ``tsne@...``, ``finetune@...-<mode>``;
their params sections live in the torch-free ``params.py``.
"""
