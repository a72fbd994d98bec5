"""Training: a small engine (``loop``) shared by the perform and GAN tasks. Never imported by inference."""
