"""Fine-tuning with Lightning and Hydra (``scripts/train.py``): datasets in PaddleX formats, DB/CTC/classifier
LightningModules, losses, metrics with PaddleX names, and export of the best model as a pxtorch checkpoint.

The inference library (``import pxtorch``) never imports this package.
"""
