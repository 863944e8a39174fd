"""The paper's reported numbers, to print beside ours.

Values are copied from Li et al., "The Lightweight Botnet Detection Model Based on the
Improved UNet" (/work/shared/paper): accuracy, precision, recall and F1 in percent;
params in millions; FLOPs in billions (the paper does not say whether it counts
multiply-accumulates; its equations (5), (8), (10) count one per multiply-add).
Exp1 is our start mode "first", Exp2 is "payload".
"""

from __future__ import annotations

# Our model names and the paper's.
PAPER_MODEL_NAMES: dict[str, str] = {
    "unet1d": "1D-UNet",
    "unet1d_light": "1DL-UNet",
    "mobilenet1d": "1D-MobileNet",
}

# Tables 2 (Exp1, start "first") and 3 (Exp2, start "payload"):
# start -> model -> N -> (accuracy, precision, recall, F1), percent.
PAPER_BY_PACKETS: dict[str, dict[str, dict[int, tuple[float, float, float, float]]]] = {
    "first": {
        "unet1d": {
            1: (96.81, 95.64, 96.89, 96.26),
            2: (99.28, 99.11, 99.22, 99.16),
            4: (99.58, 99.54, 99.49, 99.51),
            6: (99.59, 99.59, 99.47, 99.53),
            8: (99.65, 99.50, 99.67, 99.59),
            10: (99.61, 99.49, 99.59, 99.54),
            12: (99.63, 99.49, 99.65, 99.57),
            14: (99.59, 99.47, 99.59, 99.53),
            16: (99.57, 99.51, 99.49, 99.50),
        },
        "unet1d_light": {
            1: (96.75, 96.65, 95.82, 96.23),
            2: (99.26, 99.30, 98.98, 99.14),
            4: (99.63, 99.61, 99.52, 99.56),
            6: (99.61, 99.52, 99.58, 99.55),
            8: (99.66, 99.54, 99.68, 99.61),
            10: (99.62, 99.54, 99.58, 99.56),
            12: (99.57, 99.59, 99.40, 99.50),
            14: (99.56, 99.49, 99.49, 99.49),
            16: (99.61, 99.62, 99.48, 99.69),
        },
    },
    "payload": {
        "unet1d": {
            1: (99.19, 98.92, 99.18, 99.05),
            2: (99.34, 99.14, 99.32, 99.23),
            4: (99.54, 99.49, 99.44, 99.47),
            6: (99.61, 99.59, 99.49, 99.54),
            8: (99.62, 99.51, 99.59, 99.55),
            10: (99.47, 99.41, 99.36, 99.38),
            12: (99.58, 99.55, 99.46, 99.51),
            14: (99.49, 99.33, 99.49, 99.41),
            16: (99.56, 99.53, 99.46, 99.49),
        },
        "unet1d_light": {
            1: (99.26, 98.92, 99.35, 99.14),
            2: (99.38, 99.31, 99.24, 99.27),
            4: (99.58, 99.46, 99.55, 99.50),
            6: (99.57, 99.54, 99.46, 99.50),
            8: (99.63, 99.51, 99.63, 99.57),
            10: (99.56, 99.47, 99.50, 99.48),
            12: (99.63, 99.56, 99.58, 99.57),
            14: (99.62, 99.56, 99.56, 99.56),
            16: (99.61, 99.50, 99.59, 99.55),
        },
    },
}

# Tables 4 (Exp1, 8 packets) and 5 (Exp2, 1 packet): (start, N) -> model ->
# (accuracy, precision, recall, F1, params in M, FLOPs in G). Table 5's 1D-UNet row
# differs slightly from Table 3 at N=1; both are copied as printed.
_Row6 = tuple[float, float, float, float, float, float]
PAPER_COMPARISON: dict[tuple[str, int], dict[str, _Row6]] = {
    ("first", 8): {
        "unet1d": (99.65, 99.50, 99.67, 99.59, 0.716, 0.141),
        "unet1d_light": (99.66, 99.54, 99.68, 99.61, 0.245, 0.056),
        "mobilenet1d": (99.68, 99.59, 99.65, 99.62, 3.178, 0.258),
    },
    ("payload", 1): {
        "unet1d": (99.22, 98.94, 99.23, 99.08, 0.715, 0.025),
        "unet1d_light": (99.26, 98.92, 99.35, 99.14, 0.243, 0.007),
        "mobilenet1d": (99.28, 98.94, 99.38, 99.16, 2.434, 0.046),
    },
}

# Which paper table each of ours corresponds to, for captions.
PAPER_TABLE_OF_START: dict[str, str] = {"first": "Table 2 (Exp1)", "payload": "Table 3 (Exp2)"}
PAPER_TABLE_OF_COMPARISON: dict[tuple[str, int], str] = {
    ("first", 8): "Table 4: Exp1, 8 packets",
    ("payload", 1): "Table 5: Exp2, 1 packet",
}
