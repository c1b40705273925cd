"""Adversarial attacks on the selected models, for multi-label classification and segmentation.

``objectives`` (pixel-space model, goals, targets), ``gradient`` (FGSM, PGD; L∞ and L2),
``generator`` (perturbation CNN, universal perturbation), ``evaluate`` (success, PSNR/SSIM,
CRF-aware scores), ``registry`` (config names -> attacks), ``run`` (one workflow job, summary),
``plots`` (figures). Importing the package registers every attack. The config check and the
settings of a job are torch-free, in vocflow.attack_config.
"""

from vocflow.attack_config import AttackSettings, attack_settings
from vocflow.attacks.registry import ATTACKS, build_attack

__all__ = ["ATTACKS", "AttackSettings", "attack_settings", "build_attack"]
