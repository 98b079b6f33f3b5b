"""``topdown nuclei``: find nuclei (instances) in a DAPI image; table, outlines, labels, overlay."""

from __future__ import annotations

import argparse
import json

from ._inference_options import add_device_option, add_precision_option

EPILOG = """\
Examples:
  topdown nuclei dapi_z0.jpg --pixel-size 0.108 --out nuclei.csv
  topdown nuclei dapi.tif --pixel-size 0.2125 --out nuclei.csv --geojson nuclei.geojson \\
      --labels nuclei_labels.tif --overlay overlay.png

nuclei.csv has one row per nucleus: label, centroid y, x (image pixels) and area_um2.
--geojson writes the outlines (image pixels, x = column, y = row); --labels the uint32
instance image at the image's size; --overlay a PNG of the image with the outlines.
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "nuclei", help="find nuclei (instances) in a DAPI image",
        description="Segment nuclei with a nucleus model trained on simulations (shipped: nuclei_dapi): "
                    "pixel-size normalisation, tiled inference, seeded watershed.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("image", metavar="IMAGE", help="image file (PNG, JPEG, TIFF)")
    p.add_argument("--model", default="nuclei_dapi", metavar="NAME|PATH",
                   help="shipped nucleus model name or checkpoint (default nuclei_dapi)")
    p.add_argument("--pixel-size", type=float, default=None, metavar="UM", dest="pixel_size",
                   help="micrometres per image pixel (required)")
    p.add_argument("--out", required=True, metavar="nuclei.csv", help="output table (CSV)")
    p.add_argument("--geojson", default=None, metavar="nuclei.geojson", help="also write the outlines")
    p.add_argument("--labels", default=None, metavar="labels.tif", help="also write the instance image (TIFF)")
    p.add_argument("--overlay", default=None, metavar="overlay.png", help="also write an overlay figure")
    p.add_argument("--tile", type=int, default=1024, metavar="PX", help="tile side in model pixels (default 1024)")
    add_precision_option(p)
    add_device_option(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from .._files import atomic_path, existing_path, output_files
    from .._image import read_image
    from ..errors import InputError
    from ..seg.checkpoint import files_of
    from ..seg.nuclei_infer import nuclei

    image = existing_path(args.image, "image")
    if args.pixel_size is None:
        raise InputError("--pixel-size UM (micrometres per image pixel) is required: the nucleus model "
                         "works at a fixed pixel size and the image is resampled to it.")
    paths = output_files({"--out": (args.out, "csv"), "--geojson": (args.geojson, None),
                          "--labels": (args.labels, None), "--overlay": (args.overlay, "figure")},
                         inputs=(image, *files_of(args.model)))
    arr = read_image(image)
    res = nuclei(arr, args.model, pixel_size_um=args.pixel_size, tile=args.tile, device=args.device,
                 precision=args.precision, progress=True)
    with atomic_path(paths["--out"]) as tmp:
        res.table.to_csv(tmp, index=False)
    if paths["--geojson"] is not None:
        with atomic_path(paths["--geojson"]) as tmp:
            tmp.write_text(res.to_geodataframe().to_json())
    if paths["--labels"] is not None:
        import tifffile

        with atomic_path(paths["--labels"]) as tmp:
            tifffile.imwrite(tmp, res.labels.astype(np.uint32), compression="zlib")
    if paths["--overlay"] is not None:
        import matplotlib

        matplotlib.use("Agg")
        from ..pl import nuclei as plot_nuclei

        plot_nuclei(arr, res, save=paths["--overlay"], show=False)
    print(json.dumps({"out": str(paths["--out"]), "n_nuclei": len(res),
                      "median_area_um2": float(np.median(res.table["area_um2"])) if len(res) else None,
                      "model": res.meta.get("model")}, indent=2))
    return 0
