"""Small spec-conformant 10x files for the reader tests (HDF5 feature-barcode matrix, OME-TIFF pyramid)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import tifffile
from scipy import sparse


def write_10x_h5(p: Path, counts: np.ndarray, barcodes, names, feature_types, genome: str = "mm10") -> None:
    """Cell Ranger / Space Ranger / Xenium ``matrix`` group: features x barcodes CSC."""
    m = sparse.csc_matrix(np.asarray(counts, dtype=np.int32).T)  # features x barcodes
    with h5py.File(p, "w") as f:
        g = f.create_group("matrix")
        g["data"], g["indices"], g["indptr"] = m.data.astype(np.int32), m.indices.astype(np.int64), m.indptr.astype(np.int64)
        g["shape"] = np.array(m.shape, dtype=np.int32)
        g["barcodes"] = np.array([str(b).encode() for b in barcodes], dtype="S")
        ft = g.create_group("features")
        ft["id"] = np.array([f"ENSMUSG{i:011d}".encode() for i in range(len(names))], dtype="S")
        ft["name"] = np.array([str(n).encode() for n in names], dtype="S")
        ft["feature_type"] = np.array([str(t).encode() for t in feature_types], dtype="S")
        ft["genome"] = np.array([genome.encode()] * len(names), dtype="S")
        ft["_all_tag_keys"] = np.array([b"genome"], dtype="S")
        f.attrs["filetype"] = "matrix"


def write_pyramid(p: Path, img: np.ndarray, levels: int = 3, pixel_size: float = 0.2125) -> None:
    """A tiled pyramidal OME-TIFF (level 0 + ``levels - 1`` halvings in SubIFDs), as Xenium writes."""
    with tifffile.TiffWriter(p, bigtiff=True, ome=True) as tif:
        opts = {"tile": (64, 64), "photometric": "minisblack"}
        tif.write(img, subifds=levels - 1, metadata={"axes": "YX", "PhysicalSizeX": pixel_size,
                                                     "PhysicalSizeY": pixel_size}, **opts)
        for k in range(1, levels):
            tif.write(img[:: 2**k, :: 2**k], subfiletype=1, **opts)


def blob_image(h: int, w: int, centres_px: np.ndarray, radius: float = 6.0) -> np.ndarray:
    """uint16 image, dark with a bright disc at each (x, y) centre."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.full((h, w), 200, np.uint16)
    for x, y in centres_px:
        img[(xx - x) ** 2 + (yy - y) ** 2 <= radius**2] = 20000
    return img
