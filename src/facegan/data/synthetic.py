"""Procedural cartoon faces: the built-in default dataset of facegan.

Every face is drawn with Pillow from a handful of primitives (polygons built with numpy) on a canvas
four times larger than the requested resolution (at least 256 px), then downsampled with a Lanczos
filter, which anti-aliases all the edges.  A face depends only on ``(seed, index)``: it draws its own
random numbers from ``numpy.random.default_rng([seed, index])``, so the order in which faces are
rendered, and the number of worker processes, never change a single pixel.

Faces vary in skin tone, face shape, hair colour and style (bald, buzz cut, short, curly, bob, long,
bun, with or without bangs), eye size and colour, eyebrows, nose, mouth (neutral, smiling, open),
beard, lipstick, earrings, eyeglasses, clothing and background, with a little pose jitter (rotation,
scale, offset and a slight head turn).  The face fills most of the frame, like an aligned CelebA crop.

Each face comes with an integer attribute vector, described by :data:`ATTRIBUTE_NAMES` and
:data:`ATTRIBUTE_LEVELS` (attribute ``k`` takes values ``0 .. ATTRIBUTE_LEVELS[k] - 1``; the attributes
with two levels are binary flags), usable for conditional models or attribute-based evaluation.
"""

from __future__ import annotations

import colorsys
import math
import multiprocessing
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["ATTRIBUTE_LEVELS", "ATTRIBUTE_NAMES", "render_face", "render_faces"]

ATTRIBUTE_NAMES: tuple[str, ...] = (
    "skin_tone",  # 0 (lightest) .. 5 (deepest)
    "face_shape",  # oval, round, long, square, heart
    "hair_color",  # black, dark brown, brown, blond, red, grey, blue, pink
    "hair_style",  # bald, buzz, short, curly, bob, long, bun
    "eye_color",  # dark brown, hazel, blue, green, grey
    "brow_style",  # thin, medium, thick
    "nose_style",  # button, line, wide
    "background",  # hue bin: red, orange, yellow, green, teal, blue, purple, pink
    "male",
    "smiling",
    "mouth_open",
    "eyeglasses",
    "bangs",
    "long_hair",
    "bald",
    "beard",
    "lipstick",
    "earrings",
)
"""Names of the entries of the attribute vector returned with every face."""

ATTRIBUTE_LEVELS: tuple[int, ...] = (6, 5, 8, 7, 5, 3, 3, 8, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2)
"""Number of values of each attribute: attribute ``k`` lies in ``range(ATTRIBUTE_LEVELS[k])``."""

FACE_SHAPES: tuple[str, ...] = ("oval", "round", "long", "square", "heart")
"""Names of the values of the ``face_shape`` attribute."""

HAIR_COLORS: tuple[str, ...] = ("black", "dark_brown", "brown", "blond", "red", "grey", "blue", "pink")
"""Names of the values of the ``hair_color`` attribute."""

HAIR_STYLES: tuple[str, ...] = ("bald", "buzz", "short", "curly", "bob", "long", "bun")
"""Names of the values of the ``hair_style`` attribute."""

EYE_COLORS: tuple[str, ...] = ("dark_brown", "hazel", "blue", "green", "grey")
"""Names of the values of the ``eye_color`` attribute."""

Color = tuple[int, ...]

_SKIN = np.array(
    [(255, 226, 204), (240, 198, 168), (222, 172, 136), (192, 136, 100), (146, 98, 68), (92, 60, 44)],
    dtype=np.float64,
)
_SKIN.flags.writeable = False
_HAIR: tuple[Color, ...] = (
    (28, 24, 24),
    (68, 44, 30),
    (118, 78, 44),
    (222, 186, 112),
    (168, 70, 34),
    (176, 176, 180),
    (52, 112, 190),
    (214, 104, 168),
)
_HAIR_P = (0.22, 0.21, 0.17, 0.14, 0.08, 0.10, 0.04, 0.04)
_EYES: tuple[Color, ...] = ((62, 36, 20), (128, 84, 40), (66, 126, 196), (68, 136, 76), (118, 128, 140))
_EYE_P = (0.36, 0.2, 0.2, 0.12, 0.12)
_BG_HUES = (0.0, 0.08, 0.15, 0.33, 0.48, 0.6, 0.75, 0.9)
# hair style probabilities (bald, buzz, short, curly, bob, long, bun) for women and men
_STYLE_P_F = (0.01, 0.03, 0.12, 0.14, 0.22, 0.36, 0.12)
_STYLE_P_M = (0.14, 0.24, 0.36, 0.14, 0.04, 0.05, 0.03)
# face shapes: half width, upper half height, lower half height, superellipse exponent, chin taper
_SHAPES = (
    (0.265, 0.34, 0.37, 2.0, 0.30),
    (0.29, 0.33, 0.335, 2.1, 0.16),
    (0.245, 0.37, 0.40, 2.2, 0.24),
    (0.28, 0.34, 0.35, 2.8, 0.14),
    (0.285, 0.34, 0.36, 2.2, 0.42),
)
_LIPSTICK: tuple[Color, ...] = ((186, 30, 52), (206, 70, 112), (150, 40, 62), (222, 104, 96))
_DARK: Color = (38, 24, 24)
_MOUTH: Color = (96, 26, 36)
_TEETH: Color = (250, 248, 240)
_TONGUE: Color = (214, 98, 110)


def _clip(c: np.ndarray | tuple[float, ...]) -> Color:
    return tuple(min(255, max(0, round(float(v)))) for v in c)


def _mix(a: Color, b: Color, t: float) -> Color:
    return _clip(np.asarray(a, np.float64) * (1.0 - t) + np.asarray(b, np.float64) * t)


def _shade(c: Color, f: float) -> Color:
    return _clip(np.asarray(c, np.float64) * f)


def _alpha(c: Color, a: float) -> Color:
    return (*c[:3], round(a * 255))


def _hsv(h: float, s: float, v: float) -> Color:
    return _clip(np.array(colorsys.hsv_to_rgb(h % 1.0, s, v)) * 255.0)


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 32, rot: float = 0.0) -> np.ndarray:
    t = _angles(n)
    x, y = rx * np.cos(t), ry * np.sin(t)
    if rot:
        c, s = math.cos(rot), math.sin(rot)
        x, y = x * c - y * s, x * s + y * c
    return np.stack([x + cx, y + cy], axis=1)


def _ribbon(pts: np.ndarray, widths: np.ndarray | float) -> np.ndarray:
    """Polygon of a stroke of (possibly varying) width along the polyline ``pts``."""
    d = np.empty_like(pts)
    d[1:-1] = pts[2:] - pts[:-2]
    d[0], d[-1] = pts[1] - pts[0], pts[-1] - pts[-2]
    d /= np.maximum(np.hypot(d[:, :1], d[:, 1:]), 1e-9)
    normal = np.stack([-d[:, 1], d[:, 0]], axis=1) * (np.asarray(widths, np.float64).reshape(-1, 1) * 0.5)
    return np.concatenate([pts + normal, (pts - normal)[::-1]])


def _angles(n: int) -> np.ndarray:
    """``n`` angles evenly spaced around the circle."""
    return (2.0 * math.pi / n) * np.arange(n)


def _lin(a: float, b: float, n: int) -> np.ndarray:
    """``n`` evenly spaced values from ``a`` to ``b`` (a cheaper ``numpy.linspace``)."""
    return a + (b - a) / (n - 1) * np.arange(n)


def _curve(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = np.empty((len(x), 2))
    out[:, 0], out[:, 1] = x, y
    return out


class _Canvas:
    """Draws shapes given in face coordinates (unit = image width, origin = head centre) on an image."""

    def __init__(self, image: Image.Image, angle: float, scale: float, cx: float, cy: float) -> None:
        size = image.width
        self.unit = size * scale
        c, s = math.cos(angle), math.sin(angle)
        self._m = np.array([[c, s], [-s, c]]) * self.unit  # row-vector form of the rotation
        self._t = np.array([cx * size, cy * size])
        self._opaque = ImageDraw.Draw(image)
        self._blend = ImageDraw.Draw(image, "RGBA")

    def _xy(self, pts: np.ndarray) -> list[float]:
        return (pts @ self._m + self._t).ravel().tolist()

    def poly(self, pts: np.ndarray, fill: Color) -> None:
        draw = self._blend if len(fill) == 4 else self._opaque
        draw.polygon(self._xy(pts), fill=fill)

    def outline(self, pts: np.ndarray, color: Color, width: float) -> None:
        w = max(1, round(width * self.unit))
        self._opaque.polygon(self._xy(pts), outline=color, width=w)

    def stroke(self, pts: np.ndarray, color: Color, widths: np.ndarray | float) -> None:
        self.poly(_ribbon(pts, widths), color)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, fill: Color, rot: float = 0.0) -> None:
        n = int(np.clip(max(rx, ry) * 240, 12, 56))
        self.poly(_ellipse(cx, cy, rx, ry, n, rot), fill)


@dataclass
class _Face:
    """All the random choices that define one face (face coordinates: unit = image width)."""

    attrs: list[int]
    male: bool
    skin: Color
    hair: Color
    brow_color: Color
    eye_color: Color
    dyed: bool
    style: int
    bangs: bool
    # head outline
    width: float
    top: float
    bottom: float
    power: float
    taper: float
    # features
    turn: float
    light: float
    eye_y: float
    eye_dx: float
    eye_rx: float
    eye_up: float
    eye_low: float
    eye_tilt: float
    iris: float
    gaze: tuple[float, float]
    brow_y: float
    brow_len: float
    brow_width: float
    brow_arch: float
    brow_angle: float
    brow_style: int
    nose_style: int
    nose_y: float
    nose_w: float
    mouth_y: float
    mouth_w: float
    smiling: bool
    mouth_open: bool
    lip: Color
    lipstick: bool
    beard: bool
    earrings: bool
    blush: float


@dataclass
class _Scene:
    """Random choices around the face: background, clothes, eyeglasses and pose."""

    bg_hue: float
    bg_sat: float
    bg_val: float
    bg_grad: float
    cloth_hue: float
    cloth_sat: float
    cloth_val: float
    neckline: int
    angle: float
    scale: float
    dx: float
    dy: float
    glasses: bool
    glasses_style: int
    sunglasses: bool
    glasses_hue: float
    glasses_kind: int


def _head_outline(f: _Face, n: int = 72) -> np.ndarray:
    t = _angles(n)
    c, s = np.cos(t), np.sin(t)
    e = 2.0 / f.power
    x = f.width * np.sign(c) * np.abs(c) ** e
    y = np.sign(s) * np.abs(s) ** e * np.where(s > 0, f.bottom, f.top)
    low = np.clip(y / f.bottom, 0.0, 1.0)
    x = x * (1.0 - f.taper * low**2)
    return _curve(x, y)


def _half_width(f: _Face, y: float) -> float:
    """Half width of the head outline at height ``y``."""
    pts = _head_outline(f, 96)
    right = pts[pts[:, 0] >= 0]
    order = np.argsort(right[:, 1])
    return float(np.interp(y, right[order, 1], right[order, 0]))


def _sample(rng: np.random.Generator) -> tuple[_Face, _Scene]:
    """Draw the random description of a face and the pose/background/clothing parameters."""
    u = rng.uniform
    male = bool(rng.random() < 0.45)
    skin_tone = int(rng.integers(len(_SKIN)))
    tone = float(np.clip(skin_tone + u(-0.45, 0.45), 0.0, len(_SKIN) - 1.0))
    k = min(int(tone), len(_SKIN) - 2)
    skin = _SKIN[k] + (_SKIN[k + 1] - _SKIN[k]) * (tone - k)
    skin = _clip(skin * u(0.97, 1.03, 3) * (0.97 if male else 1.0))

    shape = int(rng.integers(len(_SHAPES)))
    w, top, bottom, power, taper = _SHAPES[shape]
    w *= u(0.96, 1.04) * (1.025 if male else 1.0)
    top *= u(0.97, 1.03)
    bottom *= u(0.97, 1.03) * (1.02 if male else 1.0)
    power += 0.35 if male else 0.0

    hair_idx = int(rng.choice(len(_HAIR), p=_HAIR_P))
    hair = _clip(np.asarray(_HAIR[hair_idx], np.float64) * u(0.88, 1.12))
    if hair_idx == 5:
        hair = _mix(hair, (236, 236, 236), u(0.0, 0.6))
    if hair_idx in (3, 5):
        brow_color = _shade(hair, 0.62)
    elif hair_idx in (6, 7):
        brow_color = _mix(_HAIR[1], hair, 0.25)
    else:
        brow_color = _shade(hair, 0.85)
    style = int(rng.choice(7, p=_STYLE_P_M if male else _STYLE_P_F))
    bangs = bool(style >= 2 and rng.random() < 0.3)

    eye_idx = int(rng.choice(len(_EYES), p=_EYE_P))
    smiling = bool(rng.random() < 0.5)
    mouth_open = bool(rng.random() < 0.35)

    eye_y = u(-0.045, -0.01) + (bottom - 0.36) * 0.3
    eye_rx = u(0.047, 0.064) * w / 0.27
    eye_up = eye_rx * u(0.62, 0.85)
    eye_low = eye_up * u(0.6, 0.85)
    if smiling:
        eye_up *= 0.9
        eye_low *= 0.75
    iris = min(eye_up * u(0.88, 1.08), eye_rx * 0.68)
    brow_style = int(rng.choice(3, p=(0.2, 0.5, 0.3) if male else (0.45, 0.45, 0.1)))
    nose_y = eye_y + u(0.125, 0.165)
    mouth_y = min(nose_y + u(0.075, 0.095), bottom - 0.1)
    lipstick = bool(not male and rng.random() < 0.4)
    lip = _LIPSTICK[int(rng.integers(len(_LIPSTICK)))] if lipstick else _mix(skin, (196, 86, 92), 0.35)
    lip = _shade(lip, 0.9) if not lipstick else lip

    face = _Face(
        attrs=[],
        male=male,
        skin=skin,
        hair=hair,
        brow_color=brow_color,
        eye_color=_clip(np.asarray(_EYES[eye_idx], np.float64) * u(0.9, 1.1)),
        dyed=hair_idx >= 6,
        style=style,
        bangs=bangs,
        width=w,
        top=top,
        bottom=bottom,
        power=power,
        taper=taper,
        turn=u(-0.022, 0.022),
        light=float(rng.choice((-1.0, 1.0))),
        eye_y=eye_y,
        eye_dx=w * u(0.4, 0.46),
        eye_rx=eye_rx,
        eye_up=eye_up,
        eye_low=eye_low,
        eye_tilt=u(-0.06, 0.16),
        iris=iris,
        gaze=(u(-0.6, 0.6), u(-0.3, 0.2)),
        brow_y=eye_y - eye_up - u(0.028, 0.048),
        brow_len=eye_rx * u(1.05, 1.3),
        brow_width=(0.011, 0.017, 0.025)[brow_style] * u(0.85, 1.15),
        brow_arch=u(0.004, 0.02),
        brow_angle=u(-0.12, 0.22),
        brow_style=brow_style,
        nose_style=int(rng.integers(3)),
        nose_y=nose_y,
        nose_w=u(0.022, 0.034) * (1.1 if male else 1.0),
        mouth_y=mouth_y,
        mouth_w=u(0.06, 0.09) + (0.012 if smiling else 0.0),
        smiling=smiling,
        mouth_open=mouth_open,
        lip=lip,
        lipstick=lipstick,
        beard=bool(male and rng.random() < 0.28),
        earrings=bool(not male and style not in (3, 4, 5) and rng.random() < 0.45),
        blush=u(0.0, 0.25) + (0.15 if smiling else 0.0) + (0.1 if not male else 0.0),
    )

    bg_bin = int(rng.integers(len(_BG_HUES)))
    scene = _Scene(
        bg_hue=_BG_HUES[bg_bin] + u(-0.035, 0.035),
        bg_sat=u(0.12, 0.55),
        bg_val=u(0.55, 0.95),
        bg_grad=u(-0.25, 0.25) if rng.random() < 0.6 else 0.0,
        cloth_hue=u(0.0, 1.0),
        cloth_sat=u(0.15, 0.8),
        cloth_val=u(0.25, 0.85),
        neckline=int(rng.integers(3)),
        angle=float(np.clip(rng.normal(0.0, 3.5), -8.0, 8.0)) * math.pi / 180.0,
        scale=u(0.93, 1.04),
        dx=u(-0.03, 0.03),
        dy=u(-0.02, 0.03),
        glasses=bool(rng.random() < 0.25),
        glasses_style=int(rng.integers(3)),
        sunglasses=bool(rng.random() < 0.15),
        glasses_hue=u(0.0, 1.0),
        glasses_kind=int(rng.integers(4)),
    )
    face.attrs = [
        skin_tone,
        shape,
        hair_idx,
        style,
        eye_idx,
        brow_style,
        face.nose_style,
        bg_bin,
        int(male),
        int(smiling),
        int(mouth_open),
        int(scene.glasses),
        int(bangs),
        int(style == 5),
        int(style == 0),
        int(face.beard),
        int(lipstick),
        int(face.earrings),
    ]
    return face, scene


def _background(size: int, scene: _Scene) -> Image.Image:
    top = np.asarray(_hsv(scene.bg_hue, scene.bg_sat, scene.bg_val), np.float64)
    g = scene.bg_grad
    if g == 0.0:
        return Image.new("RGB", (size, size), _clip(top))
    bottom = np.asarray(_hsv(scene.bg_hue, scene.bg_sat, float(np.clip(scene.bg_val - g, 0.2, 1.0))))
    t = _lin(0.0, 1.0, size).reshape(-1, 1, 1)
    column = np.clip(np.rint(top * (1.0 - t) + bottom * t), 0, 255).astype(np.uint8)
    return Image.fromarray(column).resize((size, size), Image.NEAREST)


def _draw_body(cv: _Canvas, f: _Face, scene: _Scene) -> None:
    cloth = _hsv(scene.cloth_hue, scene.cloth_sat, scene.cloth_val)
    rx = 0.62 if f.male else 0.56
    cy = f.bottom + 0.28
    t = _angles(64)
    c, s = np.cos(t), np.sin(t)
    e = 2.0 / 3.0
    shape = _curve(rx * np.sign(c) * np.abs(c) ** e, cy + 0.265 * np.sign(s) * np.abs(s) ** e)
    cv.poly(shape, _shade(cloth, 0.78))
    cv.poly(shape * np.array([0.97, 1.0]) + np.array([0.0, 0.012]), cloth)


def _draw_neck(cv: _Canvas, f: _Face, scene: _Scene) -> None:
    """Neck, ending in the neckline of the clothes (so it hides the hair behind it)."""
    nw = f.width * (0.44 if f.male else 0.38)
    y0 = f.bottom + 0.06
    kind = scene.neckline
    if kind == 0:  # crew neck
        x = _lin(nw * 1.25, -nw * 1.25, 9)
        y = y0 + 0.035 * (1.0 - (x / (nw * 1.25)) ** 2)
    elif kind == 1:  # v neck
        x = np.array([nw * 1.35, 0.0, -nw * 1.35])
        y = np.array([y0 - 0.01, y0 + 0.12, y0 - 0.01])
    else:  # scoop neck
        x = _lin(nw * 1.7, -nw * 1.7, 11)
        y = y0 - 0.01 + 0.09 * np.maximum(1.0 - (x / (nw * 1.7)) ** 2, 0.0) ** 0.7
    top = np.array([[-nw, 0.05], [nw, 0.05], [nw, y0 - 0.05]])
    cv.poly(np.concatenate([top, _curve(x, y), [[-nw, y0 - 0.05]]]), _shade(f.skin, 0.84))


def _hair_cap(f: _Face, rng: np.random.Generator) -> np.ndarray:
    """Polygon of the hair on top of the head, down to the temples, with the hairline or bangs."""
    w = f.width
    thick = {1: 0.012, 2: 0.045, 3: 0.05, 4: 0.05, 5: 0.04, 6: 0.03}[f.style] * rng.uniform(0.8, 1.2)
    volume = thick * rng.uniform(0.6, 1.4) + (0.02 if f.style == 2 and f.male else 0.0)
    t = _lin(math.pi, 2.0 * math.pi, 29)
    c, s = np.cos(t), np.sin(t)
    e = 2.0 / max(f.power - 0.3, 2.0)
    ox = (w + thick) * np.sign(c) * np.abs(c) ** e
    oy = -(f.top + volume) * np.abs(s) ** e
    if f.style == 2 and rng.random() < 0.5:  # side-swept volume
        oy = oy - 0.025 * np.exp(-(((c - rng.uniform(-0.5, 0.5)) / 0.4) ** 2))
    temple = f.eye_y - rng.uniform(0.02, 0.07)
    side = f.eye_y + (rng.uniform(0.02, 0.08) if f.male else rng.uniform(-0.01, 0.05))
    if f.style in (4, 5):
        side = f.eye_y + 0.12
    outer = np.concatenate([[[-(w + thick * 0.6), side]], _curve(ox, oy), [[w + thick * 0.6, side]]])
    xa = w * 0.9
    if f.bangs:
        n = int(rng.integers(5, 9)) * 2 + 1
        x = _lin(xa, -xa, n)
        base = f.brow_y - rng.uniform(0.0, 0.022) + rng.uniform(-0.08, 0.08) * x + 0.03 * (x / xa) ** 2
        notch = rng.uniform(0.02, 0.04)
        y = base - np.where(np.arange(n) % 2 == 1, notch, 0.0)
        inner = np.concatenate(
            [
                [[w * 0.985, side], [w * 0.93, temple]],
                _curve(x, y),
                [[-w * 0.93, temple]],
                [[-w * 0.985, side]],
            ]
        )
    else:
        hairline = -f.top + rng.uniform(0.07, 0.12) + (0.03 if f.male and rng.random() < 0.3 else 0.0)
        u = _lin(0.0, math.pi, 21)
        x = xa * np.cos(u)
        y = temple + (hairline - temple) * np.sin(u) ** rng.uniform(0.4, 0.8)
        if f.style in (2, 4, 5, 6):  # a parting: the hairline dips on one side
            p = rng.uniform(-0.6, 0.6)
            y = y - 0.03 * np.exp(-(((np.cos(u) - p) / 0.25) ** 2))
        if f.style == 3:  # curls
            y = y + 0.012 * np.abs(np.sin(u * rng.integers(5, 9)))
        inner = np.concatenate([[[w * 0.985, side]], _curve(x, y), [[-w * 0.985, side]]])
    return np.concatenate([outer, inner])


def _draw_back_hair(cv: _Canvas, f: _Face, rng: np.random.Generator) -> None:
    back = _shade(f.hair, 0.78)
    w = f.width
    if f.style == 3:  # curly: scalloped cloud around the head
        t = _angles(96)
        k = int(rng.integers(9, 14))
        r = 1.0 + 0.06 * np.abs(np.sin(k * t + rng.uniform(0, math.pi)))
        rx, ry = w + rng.uniform(0.06, 0.11), f.top + rng.uniform(0.03, 0.09)
        cy = -0.06
        cv.poly(_curve(rx * r * np.cos(t), cy + ry * r * np.sin(t)), back)
    elif f.style in (4, 5):
        end = f.mouth_y + rng.uniform(0.0, 0.08) if f.style == 4 else rng.uniform(0.5, 0.62)
        spread = rng.uniform(0.04, 0.08) if f.style == 4 else rng.uniform(0.06, 0.13)
        t = _lin(math.pi, 2.0 * math.pi, 25)
        top = _curve((w + 0.05) * np.cos(t), -(f.top + 0.05) * np.abs(np.sin(t)) - 0.01)
        x = _lin(w + spread, -(w + spread), 13)
        y = end + 0.015 * np.cos(x * rng.uniform(30, 50)) + (0.03 * (x / w) ** 2 if f.style == 4 else 0.0)
        sides = np.concatenate([[[w + spread * 0.8, 0.0]], _curve(x, y), [[-(w + spread * 0.8), 0.0]]])
        cv.poly(np.concatenate([top, sides]), back)
    elif f.style == 0 and rng.random() < 0.6:  # fringe of hair around the back of the head
        col = _shade(f.brow_color, 1.2) if f.dyed else f.hair
        pts = _head_outline(f, 96)
        y0, y1 = f.eye_y - rng.uniform(0.09, 0.14), f.eye_y + 0.07
        for side in (-1.0, 1.0):
            arc = pts[(pts[:, 0] * side > 0) & (pts[:, 1] > y0) & (pts[:, 1] < y1)]
            arc = arc[np.argsort(arc[:, 1])]
            k = _lin(0.0, 1.0, len(arc))
            cv.stroke(arc, _shade(col, 0.9), 0.008 + 0.035 * np.sin(math.pi * k) ** 0.6)
    elif f.style == 6:  # bun on top of the head
        r = rng.uniform(0.09, 0.12)
        cv.ellipse(rng.uniform(-0.03, 0.03), -f.top - r * 0.55, r, r * 0.9, back)


def _draw_face_skin(cv: _Canvas, f: _Face) -> None:
    outline = _head_outline(f)
    cv.poly(outline, _shade(f.skin, 0.86))
    lit = outline * 0.955 + np.array([f.light * 0.012, -0.012])
    cv.poly(lit, f.skin)
    if f.blush > 0.05:
        y = f.mouth_y - 0.055
        a = min(f.blush, 0.4) * (1.0 - 0.6 * (1.0 - f.skin[0] / 255.0))
        for side in (-1.0, 1.0):
            cv.ellipse(side * (f.eye_dx + 0.015) + f.turn, y, 0.045, 0.026, _alpha((232, 96, 100), a))


def _draw_ears(cv: _Canvas, f: _Face, scene: _Scene) -> None:
    if f.style in (3, 4, 5):
        return
    y = f.eye_y + 0.055
    hw = _half_width(f, y)
    for side in (-1.0, 1.0):
        x = side * (hw - 0.004) - f.turn * 0.6
        cv.ellipse(x, y, 0.04, 0.068, _shade(f.skin, 0.88), rot=side * 0.2)
        cv.ellipse(x + side * 0.01, y, 0.02, 0.042, _shade(f.skin, 0.72), rot=side * 0.2)
        if f.earrings:
            col = (226, 190, 60) if scene.cloth_hue < 0.5 else (214, 214, 226)
            cv.ellipse(x + side * 0.008, y + 0.07, 0.011, 0.011, col)


def _draw_eye(cv: _Canvas, f: _Face, side: float) -> None:
    cx, cy = side * f.eye_dx + f.turn, f.eye_y
    rx, ru, rl = f.eye_rx, f.eye_up, f.eye_low
    rot = -f.eye_tilt * side
    t = _lin(0.0, math.pi, 15)
    upper = _curve(rx * np.cos(t), -ru * np.sin(t))  # outer-right corner to left corner, over the top
    lower = _curve(-rx * np.cos(t), rl * np.sin(t) ** 0.9)  # back underneath
    c, s = math.cos(rot), math.sin(rot)
    rmat = np.array([[c, s], [-s, c]])
    almond = np.concatenate([upper, lower[1:-1]]) @ rmat + np.array([cx, cy])
    cv.poly(almond, (250, 248, 246))
    gx = cx + f.gaze[0] * (rx - f.iris) * 0.8 + f.turn * 0.5
    gy = cy + f.gaze[1] * ru * 0.3 + (ru - rl) * 0.15
    cv.ellipse(gx, gy, f.iris, f.iris, f.eye_color)
    cv.ellipse(gx, gy, f.iris * 0.78, f.iris * 0.78, _shade(f.eye_color, 0.8))
    cv.ellipse(gx, gy, f.iris * 0.46, f.iris * 0.46, (16, 12, 12))
    cv.ellipse(gx - f.iris * 0.35, gy - f.iris * 0.38, f.iris * 0.24, f.iris * 0.24, (255, 255, 255))
    # skin "lid" around the almond hides the parts of the iris outside the eye opening
    m = max(ru, rl, f.iris) * 1.25 + 0.01
    box = np.array(
        [
            [rx + 0.004, 0.0],
            [rx + 0.004, m],
            [-rx - 0.02, m],
            [-rx - 0.02, -m],
            [rx + 0.004, -m],
            [rx + 0.004, 0.0],
        ]
    )
    box = box @ rmat + np.array([cx, cy])
    cv.poly(np.concatenate([box, almond[::-1]]), f.skin)
    # lash line (thicker towards the outer corner), lower lid, crease
    lash = upper * np.array([1.04, 1.08]) @ rmat + np.array([cx, cy])
    prof = _lin(1.0, 0.35, len(t)) ** (1.0 if f.male else 0.7)
    width = (0.009 if f.male else 0.013) * prof + 0.003
    cv.stroke(lash, _DARK, width)
    if not f.male:
        wing = np.array([[rx * 1.02, -ru * 0.05], [rx * 1.2, -ru * 0.45]]) @ rmat + np.array([cx, cy])
        cv.stroke(wing, _DARK, np.array([0.008, 0.003]))
    crease = upper[2:-2] * np.array([1.05, 1.55]) - np.array([0.0, 0.008])
    cv.stroke(crease @ rmat + np.array([cx, cy]), _alpha(_shade(f.skin, 0.6), 0.5), 0.004)
    cv.stroke(lower[2:-2] @ rmat + np.array([cx, cy]), _alpha(_shade(f.skin, 0.55), 0.45), 0.004)


def _draw_brow(cv: _Canvas, f: _Face, side: float) -> None:
    s = _lin(-1.0, 1.0, 13)  # -1 = inner end, +1 = outer end
    cx = side * (f.eye_dx + 0.006) + f.turn
    x = cx + side * s * f.brow_len
    y = f.brow_y - f.brow_arch * (1.0 - s**2) - f.brow_angle * f.brow_len * s * 0.5
    along = (s + 1.0) / 2.0
    width = f.brow_width * (1.0 - 0.35 * along) * (1.0 - 0.75 * along**6)
    pts = _curve(x, y)
    if side < 0:
        pts, width = pts[::-1], width[::-1]
    cv.stroke(pts, f.brow_color, width)


def _draw_nose(cv: _Canvas, f: _Face) -> None:
    nx = f.turn * 1.6
    y = f.nose_y
    w = f.nose_w
    dark = _shade(f.skin, 0.6)
    if f.nose_style == 0:  # button
        cv.ellipse(nx, y - 0.006, w * 0.95, w * 0.62, _alpha(_shade(f.skin, 0.78), 0.5))
        cv.ellipse(nx - f.light * w * 0.2, y - 0.012, w * 0.4, w * 0.28, _alpha((255, 255, 255), 0.25))
        for side in (-1.0, 1.0):
            cv.ellipse(nx + side * w * 0.45, y + 0.004, w * 0.26, w * 0.15, dark)
    elif f.nose_style == 1:  # side line with a hook at the tip
        sd = -f.light
        pts = np.array(
            [
                [nx + sd * w * 0.35, f.eye_y + 0.03],
                [nx + sd * w * 0.45, y - 0.045],
                [nx + sd * w * 0.75, y - 0.01],
                [nx + sd * w * 0.55, y + 0.008],
                [nx - sd * w * 0.05, y + 0.012],
            ]
        )
        cv.stroke(pts, _alpha(dark, 0.85), np.array([0.003, 0.006, 0.007, 0.007, 0.004]))
        cv.ellipse(nx - sd * w * 0.55, y + 0.003, w * 0.22, w * 0.13, _alpha(dark, 0.7))
    else:  # wide: shaded bridge and a curved underside
        sd = -f.light
        tri = np.array([[nx + sd * 0.004, f.eye_y + 0.03], [nx + sd * w * 0.9, y], [nx, y]])
        cv.poly(tri, _alpha(_shade(f.skin, 0.75), 0.45))
        x = _lin(-w, w, 11)
        under = _curve(nx + x, y + 0.01 - 0.016 * (x / w) ** 2)
        cv.stroke(under, _alpha(dark, 0.85), 0.006 * (1.0 - 0.5 * (x / w) ** 2) + 0.002)


def _draw_mouth(cv: _Canvas, f: _Face) -> None:
    mx, my, mw = f.turn * 1.2, f.mouth_y, f.mouth_w
    curve = (0.03 if f.smiling else 0.004) * mw / 0.08
    x = _lin(-mw, mw, 17)
    q = np.minimum((x / mw) ** 2, 1.0)
    mid = my - curve * q
    if f.mouth_open:
        mw2 = mw if f.smiling else mw * 0.75
        x2 = _lin(-mw2, mw2, 17)
        q2 = np.minimum((x2 / mw2) ** 2, 1.0)
        top = my - curve * q2 - (0.0 if f.smiling else 0.012 * (1.0 - q2) ** 0.6)
        depth = (0.055 if f.smiling else 0.04) * mw2 / 0.08
        bottom = top + depth * (1.0 - q2) ** 0.7 + 0.004
        lip = 0.008 if f.lipstick else 0.006
        hole = np.concatenate([_curve(x2 + mx, top), _curve(x2[::-1] + mx, bottom[::-1])])
        grow = np.concatenate(
            [
                _curve((x2 * 1.06) + mx, top - lip * (1.2 - q2)),
                _curve((x2[::-1] * 1.06) + mx, bottom[::-1] + lip * 1.4 * (1.2 - q2[::-1])),
            ]
        )
        cv.poly(grow, f.lip)
        cv.poly(hole, _MOUTH)
        if f.smiling:
            teeth = top + depth * 0.38 * (1.0 - q2) ** 0.5
            cv.poly(
                np.concatenate([_curve(x2 * 0.92 + mx, top), _curve(x2[::-1] * 0.92 + mx, teeth[::-1])]),
                _TEETH,
            )
        cv.ellipse(mx, bottom[8] - depth * 0.2, mw2 * 0.5, depth * 0.28, _TONGUE)
    else:
        up = (0.011 if f.lipstick else 0.008) * (1.0 - q) ** 0.7
        up = up * (1.0 - 0.35 * np.exp(-((x / mw) ** 2) / 0.02))  # cupid's bow
        low = (0.016 if f.lipstick else 0.011) * (1.0 - q) ** 0.6
        cv.poly(np.concatenate([_curve(x + mx, mid - up), _curve(x[::-1] + mx, (mid + low)[::-1])]), f.lip)
        cv.stroke(_curve(x * 1.02 + mx, mid), _shade(f.lip, 0.45), 0.006 * (1.0 - 0.6 * q) + 0.002)
        cv.ellipse(mx, my + low[8] * 0.6, mw * 0.28, 0.004, _alpha((255, 255, 255), 0.22))
    if f.smiling:
        for side in (-1.0, 1.0):
            cx = mx + side * (mw + 0.014)
            pts = np.array(
                [
                    [cx - side * 0.004, mid[0] - 0.016],
                    [cx + side * 0.004, mid[0] - 0.002],
                    [cx - side * 0.002, mid[0] + 0.012],
                ]
            )
            cv.stroke(pts, _alpha(_shade(f.skin, 0.6), 0.6), 0.004)


def _draw_beard(cv: _Canvas, f: _Face, rng: np.random.Generator) -> None:
    """A full beard along the jaw, or a goatee (moustache and chin patch)."""
    color = _alpha(f.hair if f.style != 0 else _shade(f.brow_color, 1.1), 0.95)
    mw, my, mx = f.mouth_w, f.mouth_y, f.turn * 1.2
    outline = _head_outline(f, 96) * 1.015
    angle = np.arctan2(outline[:, 1], outline[:, 0])
    outline = outline[np.argsort(angle)]  # right side -> chin -> left side for the lower half
    if rng.random() < 0.6:
        y0 = f.eye_y + rng.uniform(0.1, 0.15)
        low = outline[outline[:, 1] >= y0]
        hw = _half_width(f, y0)
        inner = np.array(
            [
                [-hw * 0.96, y0],
                [-hw * 0.8, y0 + 0.05],
                [mx - mw - 0.03, my + 0.005],
                [mx - mw * 0.5, my - 0.035],
                [mx, my - 0.03],
                [mx + mw * 0.5, my - 0.035],
                [mx + mw + 0.03, my + 0.005],
                [hw * 0.8, y0 + 0.05],
                [hw * 0.96, y0],
            ]
        )
        cv.poly(np.concatenate([low, inner]), color)
        return
    x = _lin(mw + 0.012, -mw - 0.012, 11)
    q = (x / (mw + 0.012)) ** 2
    moustache = _curve(mx + x, my - 0.026 + 0.03 * q)
    cv.stroke(moustache, color, 0.02 * (1.0 - 0.7 * q) + 0.004)
    reach = mw * rng.uniform(0.6, 1.0)
    low = outline[(outline[:, 1] > my) & (np.abs(outline[:, 0] - mx) < reach)]
    top = my + rng.uniform(0.02, 0.035)
    chin = np.concatenate([[[mx + reach * 0.9, top]], low, [[mx - reach * 0.9, top]]])
    cv.poly(chin, color)


def _draw_front_hair(cv: _Canvas, f: _Face, rng: np.random.Generator) -> None:
    if f.style == 0:
        return
    cap = _hair_cap(f, rng)
    col = f.hair if f.style != 1 else _mix(f.hair, _shade(f.skin, 0.8), 0.35)
    cv.poly(cap, col)
    if f.style in (2, 3, 4, 5, 6):  # a few strands of highlight
        hi = _alpha(_mix(f.hair, (255, 255, 255), 0.3), 0.35)
        for _ in range(int(rng.integers(2, 5))):
            x0 = rng.uniform(-0.6, 0.6) * f.width
            t = _lin(0.0, 1.0, 6)
            pts = _curve(x0 + (x0 * 0.5 + rng.uniform(-0.03, 0.03)) * t, -f.top + 0.01 + t * 0.09)
            cv.stroke(pts, hi, 0.008 * (1.0 - t * 0.7))
    if f.style in (4, 5) and not f.bangs:  # locks falling along the cheeks
        for side in (-1.0, 1.0):
            hw = f.width
            pts = np.array(
                [
                    [side * (hw + 0.01), f.eye_y - 0.06],
                    [side * (hw - 0.02), f.eye_y + 0.06],
                    [side * (hw - 0.015), f.mouth_y + 0.02],
                    [side * (hw + 0.03), f.mouth_y + 0.06],
                    [side * (hw + 0.05), f.eye_y],
                ]
            )
            cv.poly(pts, _shade(f.hair, 0.95))


def _draw_glasses(cv: _Canvas, f: _Face, scene: _Scene) -> None:
    kind = scene.glasses_kind
    frame = ((20, 20, 24), (92, 52, 30), (200, 170, 80), _hsv(scene.glasses_hue, 0.7, 0.6))[kind]
    thick = 0.012 if kind in (0, 1, 3) else 0.007
    style = scene.glasses_style
    sun = scene.sunglasses
    ry = max(f.eye_up, f.eye_low) * 1.2 + 0.022
    rx = f.eye_rx * 1.25 + 0.01
    lenses = []
    for side in (-1.0, 1.0):
        cx, cy = side * f.eye_dx + f.turn, f.eye_y + 0.004
        if style == 0:  # round
            r = max(rx, ry) * 0.92
            pts = _ellipse(cx, cy, r, r, 40)
        elif style == 1:  # rectangular with rounded corners
            t = _angles(40)
            c, s = np.cos(t), np.sin(t)
            x = rx * np.sign(c) * np.abs(c) ** 0.45
            pts = _curve(cx + x, cy + ry * 0.85 * np.sign(s) * np.abs(s) ** 0.45)
        else:  # aviator-ish: wider at the top
            t = _angles(40)
            c, s = np.cos(t), np.sin(t)
            x = rx * 1.05 * np.sign(c) * np.abs(c) ** 0.7 * np.where(s > 0, 0.92, 1.0)
            pts = _curve(cx + x, cy + ry * np.sign(s) * np.abs(s) ** 0.8 + np.where(s > 0, 0.01, 0.0))
        lenses.append(pts)
        cv.poly(pts, (20, 22, 30, 225) if sun else (235, 245, 255, 45))
        cv.outline(pts, frame, thick)
    inner_l = lenses[0][np.argmax(lenses[0][:, 0])]
    inner_r = lenses[1][np.argmin(lenses[1][:, 0])]
    bridge = np.array([inner_l, (inner_l + inner_r) / 2 - np.array([0.0, 0.012]), inner_r])
    cv.stroke(bridge, frame, thick * 0.9)
    for side, lens in ((-1.0, lenses[0]), (1.0, lenses[1])):
        outer = lens[np.argmax(lens[:, 0] * side)]
        end = np.array([side * (_half_width(f, f.eye_y) + 0.005), f.eye_y + 0.02])
        cv.stroke(np.array([outer, end]), frame, thick * 0.8)


def _paint(face: _Face, scene: _Scene, size: int, rng: np.random.Generator) -> Image.Image:
    image = _background(size, scene)
    cv = _Canvas(image, scene.angle, 1.12 * scene.scale, 0.5 + scene.dx, 0.475 + scene.dy)
    _draw_body(cv, face, scene)
    _draw_back_hair(cv, face, rng)
    _draw_neck(cv, face, scene)
    _draw_ears(cv, face, scene)
    _draw_face_skin(cv, face)
    if face.beard:
        _draw_beard(cv, face, rng)
    _draw_nose(cv, face)
    _draw_mouth(cv, face)
    for side in (-1.0, 1.0):
        _draw_eye(cv, face, side)
        _draw_brow(cv, face, side)
    _draw_front_hair(cv, face, rng)
    if scene.glasses:
        _draw_glasses(cv, face, scene)
    return image


def render_face(seed: int, index: int, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Render face number ``index`` of the set ``seed``: (H×W×3 uint8 RGB, int16 attribute vector)."""
    if resolution < 4:
        raise ValueError(f"resolution must be at least 4, got {resolution}")
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be non-negative, got seed={seed} index={index}")
    rng = np.random.default_rng([seed, index])
    face, scene = _sample(rng)
    size = max(256, 4 * resolution)
    image = _paint(face, scene, size, rng)
    if size != resolution:
        image = image.resize((resolution, resolution), Image.LANCZOS, reducing_gap=2.0)
    return np.asarray(image, dtype=np.uint8).copy(), np.asarray(face.attrs, dtype=np.int16)


def _render_range(task: tuple[int, int, int, int]) -> tuple[int, np.ndarray, np.ndarray]:
    """Render faces ``start .. stop-1`` of set ``seed`` (a top-level function, so spawn-safe)."""
    seed, start, stop, resolution = task
    images = np.empty((stop - start, resolution, resolution, 3), dtype=np.uint8)
    attrs = np.empty((stop - start, len(ATTRIBUTE_NAMES)), dtype=np.int16)
    for i in range(start, stop):
        images[i - start], attrs[i - start] = render_face(seed, i, resolution)
    return start, images, attrs


def render_faces(
    n: int,
    resolution: int,
    seed: int = 0,
    workers: int = 1,
    on_progress: Callable[[int], object] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Render faces ``0 .. n-1`` of set ``seed``: (N×H×W×3 uint8, N×A int16), identical for any ``workers``.

    ``workers > 1`` renders chunks in a ``multiprocessing`` pool (``workers <= 0`` means one per CPU);
    ``on_progress(k)`` is called in this process each time ``k`` more faces are done.
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    if resolution < 4:
        raise ValueError(f"resolution must be at least 4, got {resolution}")
    if workers <= 0:
        workers = os.cpu_count() or 1
    images = np.empty((n, resolution, resolution, 3), dtype=np.uint8)
    attrs = np.empty((n, len(ATTRIBUTE_NAMES)), dtype=np.int16)
    workers = min(workers, max(1, n))
    chunk = 64 if workers == 1 else int(np.clip(math.ceil(n / (workers * 8)), 1, 256))
    tasks = [(seed, s, min(s + chunk, n), resolution) for s in range(0, n, chunk)]
    if workers == 1:
        results = map(_render_range, tasks)
        for start, im, at in results:
            images[start : start + len(im)], attrs[start : start + len(at)] = im, at
            if on_progress is not None:
                on_progress(len(im))
        return images, attrs
    with multiprocessing.get_context().Pool(workers) as pool:
        for start, im, at in pool.imap_unordered(_render_range, tasks):
            images[start : start + len(im)], attrs[start : start + len(at)] = im, at
            if on_progress is not None:
                on_progress(len(im))
    return images, attrs
