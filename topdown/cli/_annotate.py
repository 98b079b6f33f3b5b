"""``topdown annotate``: read spatial data, segment its image into regions, assign spots, write h5ad."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import DataFileError
from ._inference_options import (
    add_device_option,
    add_inference_options,
    layer_prior_arg,
    orientation_arg,
)

log = logging.getLogger("topdown")

EXAMPLE = """\
Example:
  topdown annotate visium_mouse_brain_v1/outs --model mouse_brain_coronal --out annotated.h5ad \\
      --overlay overlay.png
  topdown annotate visium_mouse_brain_v1/outs --regions drawn_in_qupath.geojson --out annotated.h5ad

INPUT may be a Space Ranger outs folder (Visium), a MERSCOPE output folder
(cell_by_gene.csv + cell_metadata.csv + images/) or an .h5ad with obsm['spatial'] and
uns['spatial']. The result holds obs['region'], obs['region_confidence'],
obsm['region_fractions'], uns['region_colors'] and uns['regions'] (polygons + provenance).
"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "annotate", help="segment the tissue image into regions and label every spot/cell",
        description="Read Visium / MERSCOPE / h5ad data, segment its tissue image with a region "
                    "model, assign each spot or cell to a region and write an annotated h5ad.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="VISIUM_OUTS|MERSCOPE_DIR|H5AD")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="shipped model name or checkpoint path")
    source.add_argument("--regions", default=None, metavar="GEOJSON",
                        help="regions drawn by hand (QuPath: File > Export objects as GeoJSON, full-res "
                             "pixels) instead of a model: annotations classified by region")
    p.add_argument("--regions-pixels", choices=("fullres", "hires", "lowres"), default="fullres",
                   help="image the --regions were drawn on (default: fullres; hires/lowres: Space "
                        "Ranger's stored image was open in QuPath)")
    p.add_argument("--out", required=True, help="output .h5ad")
    p.add_argument("--library-id", default=None, help="library to annotate (default: all)")
    p.add_argument("--overlay", default=None, help="also save an overlay PNG (image + regions + spots)")
    p.add_argument("--image-key", choices=("hires", "lowres"), default=None,
                   help="image to segment (default: hires if present)")
    p.add_argument("--all-spots", action="store_true",
                   help="Visium raw matrix: keep spots off tissue too (obs['in_tissue'])")
    p.add_argument("--check-alignment", choices=("error", "warn", "ignore"), default="error",
                   help="what to do when spots do not fit the detected tissue (default: error)")
    add_inference_options(p)
    p.add_argument("--keep-empty-tissue", action="store_false", dest="drop_empty_tissue",
                   help="keep pieces of detected tissue that hold no spot or cell (default: they become "
                        "outside; they are fiducial marks or debris)")
    add_device_option(p)
    p.set_defaults(func=run)
    return p


def read_any(path: str | Path, *, all_spots: bool = False):
    """Read a Visium outs folder, a MERSCOPE folder or an h5ad, by what the path holds."""
    from .. import io
    from .._files import existing_path

    p = existing_path(path, "input")
    if p.is_file():
        if p.suffix.lower() != ".h5ad":
            raise DataFileError(f"'{p}' is a file but not an .h5ad; pass a Visium outs folder, a "
                                "MERSCOPE folder or an .h5ad.")
        return io.read_annotated(p)
    if (p / "cell_by_gene.csv").exists():
        return io.read_merscope(p)
    if (p / "spatial").is_dir():
        return io.read_visium(p, in_tissue_only=False if all_spots else None)
    if (p / "outs" / "spatial").is_dir():
        return io.read_visium(p / "outs", in_tissue_only=False if all_spots else None)
    raise DataFileError(f"'{p}' is neither a Space Ranger outs folder (spatial/ + matrix) nor a MERSCOPE "
                        "folder (cell_by_gene.csv); pass one of those or an .h5ad.")


def run(args: argparse.Namespace) -> int:
    from .. import io, tl
    from .._files import output_files
    from ..seg.checkpoint import files_of
    from ..seg.loop import pick_device

    # before any work: no output may be the input, lie inside it (a whole outs folder) or be
    # a file of the model; the two outputs must differ, and each name must fit what it receives
    paths = output_files({"--out": (args.out, "h5ad"), "--overlay": (args.overlay, "figure")},
                         inputs=(args.input, *files_of(args.model), *([args.regions] if args.regions else [])))
    out, overlay = paths["--out"], paths["--overlay"]
    adata = read_any(args.input, all_spots=args.all_spots)
    log.info("read %d observations x %d genes from %s", adata.n_obs, adata.n_vars, args.input)
    if args.regions is not None:  # hand-drawn regions take the place of the model's
        io.read_geojson_regions(adata, args.regions, library_id=args.library_id, image_key=args.image_key,
                                coordinates=args.regions_pixels)
    else:
        tl.segment_regions(adata, args.model, library_id=args.library_id, image_key=args.image_key,
                           adapt_norm=args.adapt_norm, tta=args.tta, layer_prior=layer_prior_arg(args),
                           orientation=orientation_arg(args), spot_diameter_um=args.spot_diameter,
                           drop_empty_tissue=args.drop_empty_tissue,
                           library_key="library_id" if "library_id" in adata.obs else None,
                           device=pick_device(args.device), progress=True)
    library_key = "library_id" if "library_id" in adata.obs and args.library_id is None else None
    if args.library_id is not None and "library_id" in adata.obs:
        adata = adata[adata.obs["library_id"].astype(str) == str(args.library_id)].copy()
    tl.assign_regions(adata, library_key=library_key, library_id=args.library_id,
                      check_alignment=args.check_alignment)
    counts = adata.obs["region"].value_counts()
    log.info("regions: %s", ", ".join(f"{k} {v}" for k, v in counts.items()))
    io.write_annotated(adata, out, inputs=(args.input,))
    log.info("wrote %s", out)
    if overlay is not None:
        import matplotlib

        matplotlib.use("Agg")
        from .. import pl

        libs = list(adata.uns["regions"]["libraries"])
        pl.regions(adata, library_id=args.library_id or libs[0], save=overlay, show=False)
        log.info("wrote %s", overlay)
    return 0
