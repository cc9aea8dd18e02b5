"""GANs (part 6 of the study): DCGAN / conditional DCGAN / conditional MLP GAN, their training
loop, FID on a domain classifier's features, and sample sheets from a fixed latent grid.

Stage: ``gan@<variant>``; its params section lives in the torch-free ``params.py``.
"""
