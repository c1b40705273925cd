"""ImageNet statistics: the input contract of every model (pretrained backbones expect them,
and they are harmless from scratch). Data normalises with them, models that need another
scaling (EfficientNet-Lite) undo them, attacks map pixels through them."""

from __future__ import annotations

import numpy as np

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
