"""Read Vizgen MERFISH data in the GiottoData "mini" layout: transcripts + cell polygons, no table.

The folder holds ``vizgen_transcripts.gz`` (CSV: global_x, global_y in µm, gene, global_z),
``cell_boundaries/z{k}_polygons.gz`` (CSV: x, y, poly_ID; **y negated**), ``images/*_{stain}_z{k}.jpg``
and ``image_extent.json`` (xmin, xmax, ymin, ymax in µm, y negated: row 0 is at y = ymax).
The cell-by-gene table is built here, as Vizgen's software does: a transcript counts for the cell
whose polygon on the transcript's own z plane contains it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .._files import existing_path
from ..errors import DataFileError
from ._generic import read_cells

_LAYOUT = ("vizgen_transcripts.gz, cell_boundaries/z<k>_polygons.gz, images/*_<stain>_z<k>.jpg "
           "and image_extent.json")


def _read_table(p: Path, needs: tuple[str, ...]) -> pd.DataFrame:
    try:
        df = pd.read_csv(p)
    except Exception as exc:
        raise DataFileError(f"cannot read '{p}' ({type(exc).__name__}: {exc}).") from exc
    missing = [c for c in needs if c not in df.columns]
    if missing:
        raise DataFileError(f"'{p}' lacks the column(s) {missing} (found {list(df.columns)[:8]}).")
    return df


def read_polygon_csv(p: Path) -> pd.Series:
    """``x, y, poly_ID`` CSV (y negated) -> Series of shapely polygons in µm, indexed by poly_ID."""
    import shapely

    df = _read_table(p, ("x", "y", "poly_ID"))
    codes, ids = pd.factorize(df["poly_ID"].astype(str))
    order = np.argsort(codes, kind="stable")
    xy = np.c_[df["x"].to_numpy(float), -df["y"].to_numpy(float)][order]
    try:
        rings = shapely.linearrings(xy, indices=codes[order])
    except Exception as exc:
        raise DataFileError(f"'{p}' holds a polygon with fewer than 3 points ({exc}).") from exc
    polys = shapely.make_valid(shapely.polygons(rings))
    return pd.Series(polys, index=pd.Index(ids.astype(str), name="cell_id"))


def assign_transcripts(tx: pd.DataFrame, planes: dict[int, pd.Series]) -> np.ndarray:
    """Cell id (or None) of each transcript: the polygon of its own z plane (else the nearest plane)
    that contains it; a transcript inside two overlapping polygons counts once, for the first."""
    import shapely

    zs = np.array(sorted(planes))
    tz = tx["global_z"].to_numpy() if "global_z" in tx.columns else np.full(len(tx), zs[0])
    nearest = zs[np.abs(np.asarray(tz, float)[:, None] - zs[None, :]).argmin(axis=1)]
    cell = np.full(len(tx), None, dtype=object)
    xy = tx[["global_x", "global_y"]].to_numpy(float)
    for z in zs:
        sel = np.flatnonzero(nearest == z)
        polys = planes[z]
        tree = shapely.STRtree(polys.to_numpy())
        ti, ci = tree.query(shapely.points(xy[sel]), predicate="within")
        ti, first = np.unique(ti, return_index=True)
        cell[sel[ti]] = polys.index.to_numpy()[ci[first]]
    return cell


def _planes(root: Path) -> dict[int, pd.Series]:
    bdir = root / "cell_boundaries"
    pat = re.compile(r"z(\d+)_polygons\.(csv\.gz|gz|csv)$")
    found = {int(m.group(1)): f for f in sorted(bdir.glob("z*_polygons*")) if (m := pat.match(f.name))}
    if not found:
        raise DataFileError(f"'{bdir}' holds no z<k>_polygons.gz: the folder should hold {_LAYOUT}.")
    return {z: read_polygon_csv(f) for z, f in found.items()}


def _image_and_transform(root: Path, stain: str, z: int) -> tuple[Path, np.ndarray]:
    """The stain's image of plane ``z`` and the µm -> image-pixel affine from image_extent.json."""
    from .._limits import open_pillow

    pat = re.compile(rf".*_{re.escape(stain)}_z{int(z)}\.(jpe?g|png|tiff?)$", re.IGNORECASE)
    imgs = [f for f in sorted((root / "images").glob("*")) if pat.match(f.name)]
    if not imgs:
        raise DataFileError(f"'{root / 'images'}' has no *_{stain}_z{z}.jpg (stains: DAPI, polyT); "
                            f"the folder should hold {_LAYOUT}.")
    ext_p = root / "image_extent.json"
    try:
        ext = json.loads(ext_p.read_text())
        x0, x1, y0, y1 = (float(ext[k]) for k in ("xmin", "xmax", "ymin", "ymax"))
    except Exception as exc:
        raise DataFileError(f"'{ext_p}' must be JSON with xmin, xmax, ymin, ymax in µm "
                            f"({type(exc).__name__}: {exc}).") from exc
    with open_pillow(imgs[0], tiled_reader=False) as im:
        w, h = im.size
    sx, sy = w / (x1 - x0), h / (y1 - y0)
    # y is stored negated: row 0 sits at negated y = ymax, i.e. global_y = -ymax
    m = np.array([[sx, 0.0, -sx * x0], [0.0, sy, sy * y1], [0.0, 0.0, 1.0]])
    return imgs[0], m


def read_giotto_merscope(path, *, stain: str = "dapi", z: int = 0, library_id: str | None = None,
                         max_image_side: int = 5000, keep_empty: bool = True):
    """Read Vizgen MERFISH data in the GiottoData "mini" layout and build its cell-by-gene table.

    Each transcript of ``vizgen_transcripts.gz`` is counted for the cell whose polygon (from
    ``cell_boundaries/z<k>_polygons.gz``, plane k = the transcript's ``global_z``, else the
    nearest plane) contains it; transcripts outside every cell are not counted
    (``uns['transcripts']`` says how many). Cells are all polygon ids of all planes; their
    centroid and outline come from plane ``z`` where present, else from another plane. The
    image ``images/*_<stain>_z<z>.jpg`` is placed with ``image_extent.json``: full-res pixels are
    the image's pixels. For the Vizgen output layout (cell_by_gene.csv) use :func:`read_merscope`.

    Parameters
    ----------
    path
        The folder (e.g. ``../shared/data/merfish_mouse_brain_mini``).
    stain
        Image stain (``dapi`` or ``polyT``, case-insensitive).
    z
        Image plane, and the plane whose polygons give the cells' centroids and outlines.
    library_id
        Key under ``uns['spatial']`` (default: the folder name).
    max_image_side
        The stored ``hires`` image is shrunk to at most this size (the mini JPEGs, 4603 px,
        are kept whole by default).
    keep_empty
        Keep cells that received no transcript (as Vizgen's cell_by_gene.csv does).

    Returns
    -------
    AnnData: integer counts (CSR) in ``X`` (``Blank-*`` barcodes in ``obsm['blank_counts']``,
    names in ``uns['blank_genes']``), ``obs['transcript_count']`` (blanks included), ``obsm['spatial']``
    (full-res pixels) and ``obsm['spatial_um']``, ``uns['cell_boundaries']``,
    ``uns['spatial'][library_id]`` as from :func:`read_cells` (technology ``"merscope"``).

    Examples
    --------
    >>> import topdown as td
    >>> adata = td.io.read_giotto_merscope("../shared/data/merfish_mouse_brain_mini")  # doctest: +SKIP
    >>> adata.uns["transcripts"]  # doctest: +SKIP
    """
    import shapely
    from scipy import sparse

    root = existing_path(path, "MERFISH mini folder")
    tx_p = root / "vizgen_transcripts.gz"
    if not tx_p.exists():
        raise DataFileError(f"'{root}' has no vizgen_transcripts.gz: the folder should hold {_LAYOUT}.")
    planes = _planes(root)
    image, m = _image_and_transform(root, stain, z)
    tx = _read_table(tx_p, ("global_x", "global_y", "gene"))
    cell = assign_transcripts(tx, planes)
    inside = cell != None  # noqa: E711 (elementwise on an object array)
    ids = pd.Index(pd.unique(np.concatenate([p.index.to_numpy() for p in planes.values()])), name="cell_id")
    genes = pd.Index(np.unique(tx["gene"].astype(str)))
    rows, cols = ids.get_indexer(cell[inside]), genes.get_indexer(tx["gene"].astype(str).to_numpy()[inside])
    X = sparse.csr_matrix((np.ones(len(rows), np.int32), (rows, cols)), shape=(len(ids), len(genes)))
    X.sum_duplicates()
    n = np.asarray(X.sum(axis=1)).ravel()
    if not keep_empty:
        ids, X, n = ids[n > 0], X[n > 0], n[n > 0]
    order = [z, *sorted(set(planes) - {z}, key=lambda k: abs(k - z))]
    outline = pd.concat([planes[k] for k in order if k in planes])
    outline = outline[~outline.index.duplicated()].reindex(ids)
    cent = shapely.centroid(outline.to_numpy())
    cells = pd.DataFrame({"center_x": shapely.get_x(cent), "center_y": shapely.get_y(cent),
                          "transcript_count": n}, index=ids)
    blank = genes.str.lower().str.startswith("blank")
    counts = pd.DataFrame.sparse.from_spmatrix(X[:, ~blank], index=ids, columns=genes[~blank])
    adata = read_cells(cells, image, transform=m, x="center_x", y="center_y", counts=counts,
                       boundaries=outline, library_id=library_id or root.name,
                       max_image_side=max_image_side, technology="merscope")
    adata.X = X[:, ~blank].tocsr()
    if blank.any():
        adata.obsm["blank_counts"] = X[:, blank].toarray()
        adata.uns["blank_genes"] = np.asarray(genes[blank], dtype=object)
    adata.uns["transcripts"] = {"n_total": int(len(tx)), "n_in_cells": int(inside.sum()),
                                "source": tx_p.name}
    return adata
