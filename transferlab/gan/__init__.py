"""GANs: DCGAN / conditional DCGAN / conditional MLP GAN, their training loop, FID and sample sheets."""
