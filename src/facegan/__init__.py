"""facegan: train GANs on face images and generate faces of people who do not exist."""

__version__ = "0.1.0"
