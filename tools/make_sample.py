# Generates python/lmcodec/data/sample.png: a procedural test picture (no
# third-party image content), 512x384: sky gradient, fractal-noise hills,
# a sun with a soft edge, striped and checkered patches, fine noise.
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

rng = np.random.default_rng(2026)
W, H = 512, 384
yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)

def fractal(octaves=6):
    out = np.zeros((H, W))
    amp = 1.0
    for o in range(octaves):
        s = 2 ** (o + 2)
        g = rng.standard_normal((s + 1, s + 1))
        im = Image.fromarray(g.astype(np.float32), mode="F").resize((W, H), Image.BICUBIC)
        out += amp * np.asarray(im)
        amp *= 0.55
    return (out - out.min()) / (out.max() - out.min())

sky = np.stack([90 + 80 * yy / H, 140 + 70 * yy / H, 230 - 20 * yy / H], -1)
n = fractal()
horizon = 210 + 60 * fractal(4)[0:1, :] - 30
ground_mask = yy > horizon
tex = fractal(7)
ground = np.stack([60 + 90 * tex, 110 + 80 * tex, 40 + 40 * n], -1)
img = np.where(ground_mask[..., None], ground, sky)
# sun
d = np.sqrt((xx - 400) ** 2 + (yy - 80) ** 2)
sun = np.clip((40 - d) / 3, 0, 1)[..., None]
img = img * (1 - sun) + np.array([255, 230, 150]) * sun
# clouds
c = np.clip((fractal(5) - 0.55) * 3, 0, 1) * np.clip((200 - yy) / 60, 0, 1)
img = img * (1 - c[..., None] * 0.8) + 245 * c[..., None] * 0.8
img = np.clip(img + rng.normal(0, 2.0, img.shape), 0, 255).astype(np.uint8)
im = Image.fromarray(img)
dr = ImageDraw.Draw(im)
for i in range(12):  # striped panel
    dr.rectangle([30 + 6 * i, 260, 32 + 6 * i, 350], fill=(20 + 18 * i, 30, 60))
for i in range(8):
    for j in range(8):
        if (i + j) % 2 == 0:
            dr.rectangle([130 + 10 * i, 270 + 10 * j, 139 + 10 * i, 279 + 10 * j], fill=(230, 230, 220))
dr.ellipse([250, 250, 340, 340], outline=(200, 40, 40), width=5)
dr.polygon([(380, 350), (430, 250), (480, 350)], fill=(70, 60, 140))
dr.text((260, 355), "lmcodec sample", fill=(255, 255, 255))

im.save("python/lmcodec/data/sample.png", optimize=True)
print(im.size)
