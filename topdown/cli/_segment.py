"""``topdown segment``: segment an image into anatomical regions (GeoJSON + label raster)."""

from __future__ import annotations

import argparse
import json

from ._inference_options import (
    add_device_option,
    add_inference_options,
    layer_prior_arg,
    orientation_arg,
)

EPILOG = """\
Examples:
  topdown segment outs/spatial/tissue_lowres_image.png --model mouse_brain_coronal --out regions.geojson
      (the pixel size is read from the scalefactors_json.json next to a Visium image)
  topdown segment slide.tif --model models/sc.pt --pixel-size 0.5 --out regions.geojson --labels labels.png
  topdown segment hires.png --model sc --scalefactors outs/spatial/scalefactors_json.json \\
      --image-kind hires --out regions.geojson

GeoJSON coordinates are image pixels (x = column, y = row). --labels writes the label
raster at the model's resolution (0 = outside, k = k-th class; the classes and the
downsample factor are printed and stored in the GeoJSON properties); add --labels-full to
write it at the image's size.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "segment", help="segment an image into anatomical regions",
        description="Segment a tissue image with a trained model (shipped name or checkpoint): "
                    "pixel-size normalisation, tissue detection, tiled inference; writes polygons.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("image", metavar="IMAGE", help="image file (PNG, JPEG, TIFF)")
    p.add_argument("--model", required=True, metavar="NAME|PATH", help="shipped model name or checkpoint")
    p.add_argument("--pixel-size", type=float, default=None, metavar="UM", dest="pixel_size",
                   help="micrometres per image pixel")
    p.add_argument("--scalefactors", default=None, metavar="JSON",
                   help="Visium scalefactors_json.json giving the pixel size")
    p.add_argument("--image-kind", default=None, choices=("lowres", "hires", "fullres"), dest="image_kind",
                   help="which Visium image IMAGE is (with --scalefactors; default lowres)")
    p.add_argument("--out", required=True, metavar="regions.geojson", help="output polygons (GeoJSON)")
    p.add_argument("--labels", default=None, metavar="labels.png", help="also write the label raster (PNG)")
    p.add_argument("--labels-full", action="store_true", dest="labels_full",
                   help="write --labels at the image's size instead of the model's resolution")
    p.add_argument("--no-tissue", action="store_true", dest="no_tissue",
                   help="do not veto the model with the glass/tissue detector")
    add_inference_options(p)
    p.add_argument("--tile", type=int, default=512, metavar="PX", help="tile side in model pixels (default 512)")
    add_device_option(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from .._files import atomic_path, existing_path, output_files
    from ..io import write_geojson
    from ..seg import segment
    from ..seg.checkpoint import files_of
    from ..seg.loop import pick_device

    image = existing_path(args.image, "image")
    paths = output_files({"--out": (args.out, "geojson"), "--labels": (args.labels, "png")},
                         inputs=(image, args.scalefactors, *files_of(args.model)))
    out, labels_path = paths["--out"], paths["--labels"]
    rmap = segment(image, args.model, pixel_size_um=args.pixel_size, scalefactors=args.scalefactors,
                   image_kind=args.image_kind, tissue=not args.no_tissue, tile=args.tile,
                   probabilities=False, device=pick_device(args.device), tta=args.tta,
                   adapt_norm=args.adapt_norm, layer_prior=layer_prior_arg(args), orientation=orientation_arg(args),
                   spot_diameter_um=args.spot_diameter, progress=True)
    gdf = rmap.to_geodataframe()
    props = {"classes": list(rmap.classes), "downsample": rmap.downsample,
             "map_pixel_size_um": rmap.pixel_size_um, "image_shape": list(rmap.image_shape),
             **rmap.meta}  # model, weights hash, pixel sizes and the parameters (tile, tta, adapt_norm...)
    write_geojson(gdf, out, metadata=props)  # with the properties QuPath reads (classification, colour)
    if labels_path is not None:
        from PIL import Image

        lab = rmap.labels
        if args.labels_full:
            H, W = rmap.image_shape  # the map pixel under each image pixel's centre
            rows = np.minimum(rmap.scale.to_map(np.arange(H) + 0.5, "image"), lab.shape[0] - 1).astype(int)
            cols = np.minimum(rmap.scale.to_map(np.arange(W) + 0.5, "image"), lab.shape[1] - 1).astype(int)
            lab = lab[rows][:, cols]
        with atomic_path(labels_path) as tmp:
            Image.fromarray(lab.astype(np.uint8 if lab.max() < 256 else np.uint16)).save(tmp, format="PNG")
    present = sorted(set(gdf["region"])) if len(gdf) else []
    print(json.dumps({"out": str(out), "labels": str(labels_path) if labels_path else None,
                      "regions": present, "downsample": rmap.downsample,
                      "tissue_fraction": round(rmap.tissue_fraction(), 4)}, indent=2))
    return 0
