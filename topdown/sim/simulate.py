"""Make a simulated dataset: layout -> Blender render -> artefacts -> exact masks, many frames.

Frames run in the calling process (``workers=1``), in ``K`` long-lived worker processes
(``workers=K``; each imports bpy and builds the Blender scene once), or on a
dask.distributed cluster (``scheduler=ADDRESS``). The calling process is the only writer:
it renames each frame's files into place and then appends its manifest record, so a run
that is interrupted resumes without redoing finished frames.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .._files import writable_dir
from .._modalities import MODALITIES
from .._progress import progress
from ..errors import InputError
from .dataset import DatasetWriter, SimDataset, frame_seed

#: ranges of the per-frame optics parameters (drawn with the frame's generator)
OPTICS = {"defocus_ratio": (0.1, 0.5), "focus_offset_frac": (-0.25, 0.25), "backlight": (0.95, 1.05)}


def _resolve_spec(spec):
    from .spec import TissueSpec

    if isinstance(spec, TissueSpec):
        return spec
    if isinstance(spec, (str, os.PathLike)):
        p = Path(spec)
        if p.suffix.lower() in (".yaml", ".yml") or p.exists():
            return TissueSpec.from_yaml(p)
        from .presets import load_preset

        return load_preset(str(spec))
    raise InputError(f"spec must be a TissueSpec, a preset name or a YAML path, not {type(spec).__name__}.")


def make_frame(spec, index: int, seed: int, *, size: int, pixel_size_um: float, modality: str,
               samples: int | None = None, threads: int | None = None,
               condition: str | None = None) -> dict[str, Any]:
    """Simulate one frame: ``{"image", "regions", "nuclei", "record"}`` (arrays + manifest record).

    Lays out the section from ``seed`` and renders it with :func:`render_frame`.

    Examples
    --------
    >>> f = make_frame(spec, 0, 123, size=64, pixel_size_um=20.0, modality="he")  # doctest: +SKIP
    """
    from .layout import layout

    t0 = time.perf_counter()
    section = layout(spec, seed, size=size, pixel_size_um=pixel_size_um, modality=modality,
                     condition=condition)
    layout_s = time.perf_counter() - t0
    frame = render_frame(spec, section, index, seed, modality=modality, samples=samples, threads=threads)
    seconds = frame["record"]["seconds"]
    seconds["layout_masks"] = round(seconds["layout_masks"] + layout_s, 4)
    return frame


def render_frame(spec, section, index: int, seed: int, *, modality: str, samples: int | None = None,
                 threads: int | None = None) -> dict[str, Any]:
    """Render an already laid-out ``section`` (Blender + image artefacts) and rasterise its masks.

    Returns ``{"index", "image", "regions", "nuclei", "record"}``; ``seed`` drives the optics,
    the Cycles noise and the artefacts, as in :func:`make_frame`.
    """
    from .artefacts import apply_artefacts
    from .rasterize import nuclei_mask, region_mask
    from .render import render_section

    t0 = time.perf_counter()
    regions = region_mask(section)
    nuclei = nuclei_mask(section)
    rng = np.random.default_rng([int(seed), 0x5EED])
    optics = {k: float(rng.uniform(*v)) for k, v in OPTICS.items()}
    optics["focus_offset_um"] = optics.pop("focus_offset_frac") * float(section.thickness_um)
    t1 = time.perf_counter()
    image, info = render_section(section, modality, seed=seed, samples=samples, labels=regions,
                                 engine_options={"threads": threads, **optics}, return_info=True)
    t2 = time.perf_counter()
    image, art = apply_artefacts(image, getattr(spec, "artefacts", None), rng, modality=modality,
                                 pixel_size_um=float(section.pixel_size_um))
    t3 = time.perf_counter()
    present = [section.classes[k - 1] for k in np.unique(regions) if k > 0]
    record = {
        "seed": int(seed), "pixel_size_um": float(section.pixel_size_um),
        "shape": [int(image.shape[0]), int(image.shape[1])], "classes_present": present,
        "n_nuclei": int(section.n_cells()), "modality": modality,
        "params": {"layout": section.params, "render": {**optics, "samples": info["samples"],
                                                        "device": info["device"],
                                                        "nuclei_as": info["nuclei_as"]},
                   "artefacts": art},
        "renderer": info["renderer"], "blender_version": info["blender_version"],
        "render_seconds": round(t2 - t1, 4),
        "seconds": {"layout_masks": round(t1 - t0, 4), "render": round(t2 - t1, 4),
                    "artefacts": round(t3 - t2, 4)},
    }
    return {"index": int(index), "image": image, "regions": regions, "nuclei": nuclei, "record": record}


# -- worker processes ----------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _exit_with_parent(parent_pid: int, every_s: float = 1.0) -> None:
    """Watch from a daemon thread; end this worker once its parent is gone.

    A parent killed outright (SIGKILL, SIGTERM) cannot shut its pool down, and a spawned
    worker would otherwise go on rendering frames that nobody writes.
    """
    import threading

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(every_s)
        os._exit(1)

    threading.Thread(target=watch, name="topdown-parent-watch", daemon=True).start()


def _init_worker(spec_yaml: str, settings: dict[str, Any]) -> None:
    """Pool initializer: parse the spec and load Blender once per worker process."""
    _exit_with_parent(os.getppid())
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from .render import get_renderer
    from .spec import TissueSpec

    _WORKER["spec"] = TissueSpec.from_yaml_text(spec_yaml)
    _WORKER["settings"] = settings
    get_renderer(threads=settings.get("threads"))


def _worker_frame(job: tuple[int, int]) -> dict[str, Any]:
    index, seed = job
    return make_frame(_WORKER["spec"], index, seed, **_WORKER["settings"])


def _dask_frame(spec_yaml: str, settings: dict[str, Any], index: int, seed: int) -> dict[str, Any]:
    """dask task: the renderer is cached per worker process (module-level), so bpy loads once."""
    key = (spec_yaml, tuple(sorted(settings.items())))
    if _WORKER.get("key") != key:
        from .spec import TissueSpec

        _WORKER.update(key=key, spec=TissueSpec.from_yaml_text(spec_yaml), settings=settings)
    return make_frame(_WORKER["spec"], index, seed, **settings)


def _run_local(spec, jobs, settings) -> Iterator[dict[str, Any]]:
    for index, seed in jobs:
        yield make_frame(spec, index, seed, **settings)


def _run_pool(spec_yaml, jobs, settings, workers) -> Iterator[dict[str, Any]]:
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    # an executor (unlike multiprocessing.Pool) fails loudly if a worker cannot start;
    # a bounded window of frames in flight keeps the parent's memory flat for any n
    pending: set = set()
    todo = iter(jobs)
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                             initargs=(spec_yaml, settings)) as pool:
        try:
            for job in todo:
                pending.add(pool.submit(_worker_frame, job))
                if len(pending) >= 2 * workers:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        yield fut.result()
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
        finally:
            for fut in pending:
                fut.cancel()


def _run_dask(spec_yaml, jobs, settings, scheduler) -> Iterator[dict[str, Any]]:
    from distributed import Client, as_completed

    own = not isinstance(scheduler, Client)
    try:
        client = Client(scheduler) if own else scheduler
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"cannot reach the dask scheduler {scheduler!r} ({exc}); start it "
                         "(`dask scheduler`) or pass its address as tcp://HOST:PORT.") from exc
    window = 2 * max(1, sum(client.nthreads().values()))
    todo = iter(jobs)

    def submit(job):
        i, s = job
        return client.submit(_dask_frame, spec_yaml, settings, i, s, pure=False,
                             key=f"topdown-frame-{i}-{s}-{os.getpid()}-{time.time_ns()}")

    try:
        queue = as_completed([submit(j) for _, j in zip(range(window), todo, strict=False)])
        for fut in queue:
            frame = fut.result()
            fut.release()
            nxt = next(todo, None)
            if nxt is not None:
                queue.add(submit(nxt))
            yield frame
    finally:
        if own:
            client.close()


def simulate(spec, n: int, out: str | os.PathLike, *, size: int | None = None,
             modality: str | None = None, pixel_size_um: float | None = None, seed: int = 0,
             workers: int = 1, scheduler: Any = None, samples: int | None = None,
             condition: str | None = None, progress_bar: bool | None = None) -> SimDataset:
    """Simulate ``n`` frames of a tissue into a dataset folder (resumable, appendable).

    Parameters
    ----------
    spec
        A :class:`~topdown.sim.TissueSpec`, a preset name or a YAML path.
    n
        Total number of frames the folder should hold. Frames already listed in its
        manifest are kept (resume); a larger ``n`` appends new frames.
    out
        Output folder (created; must be writable).
    size, modality, pixel_size_um
        Frame size in pixels (square), ``"he"``/``"dapi"``, µm per pixel; default to the
        spec's ``imaging`` block.
    seed
        Base seed; frame ``i`` uses ``frame_seed(seed, i)``, so any split of the work
        (resume, workers, dask) gives the same frames.
    workers
        Long-lived local worker processes (each imports bpy once). 1 renders in this process.
    scheduler
        Address of a dask.distributed scheduler (or a ``Client``): frames are rendered there.
    samples
        Cycles samples per pixel (default :data:`topdown.sim.render.DEFAULT_SAMPLES`).
    condition
        ``"pathological"`` applies the spec's pathology block in the layout.

    Returns
    -------
    SimDataset
        The reopened dataset folder.

    Raises
    ------
    InputError
        A bad argument (size, n, modality, workers).
    OutputError
        ``out`` is not writable, or holds a dataset made with another spec or settings.

    Examples
    --------
    >>> import topdown as td
    >>> ds = td.sim.simulate("olfactory_bulb", n=4, out="sims/ob", size=128, seed=7)  # doctest: +SKIP
    >>> image, regions, nuclei, meta = ds[0]  # doctest: +SKIP
    """
    spec = _resolve_spec(spec)
    imaging = spec.imaging
    size = int(size if size is not None else imaging.size)
    modality = modality or imaging.modality
    px = float(pixel_size_um if pixel_size_um is not None else imaging.pixel_size_um)
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise InputError(f"n must be a whole number >= 0, got {n!r}.")
    if not 16 <= size <= 8192:
        raise InputError(f"size must be between 16 and 8192 pixels, got {size}.")
    if modality not in MODALITIES:
        raise InputError(f"unknown modality {modality!r}; use one of {', '.join(MODALITIES)}.")
    if not px > 0:
        raise InputError(f"pixel_size_um must be > 0, got {px}.")
    if not isinstance(workers, (int, np.integer)) or workers < 1:
        raise InputError(f"workers must be a whole number >= 1, got {workers!r}.")
    writable_dir(out)
    writer = DatasetWriter(out, spec, modality=modality, size=size, pixel_size_um=px, seed=seed)
    done = writer.done
    jobs = [(i, frame_seed(seed, i)) for i in range(int(n)) if i not in done]
    if jobs:
        ncpu = os.cpu_count() or 1
        settings = {"size": size, "pixel_size_um": px, "modality": modality, "samples": samples,
                    "condition": condition}
        if scheduler is not None:
            results = _run_dask(spec.to_yaml(), jobs, {**settings, "threads": 1}, scheduler)
        elif workers > 1 and len(jobs) > 1:
            threads = max(1, ncpu // workers)
            results = _run_pool(spec.to_yaml(), jobs, {**settings, "threads": threads},
                                min(int(workers), len(jobs)))
        else:
            results = _run_local(spec, jobs, {**settings, "threads": None})
        bar = progress(total=len(jobs), desc=f"simulate {spec.name}", unit="frame",
                       disable=None if progress_bar is None else not progress_bar)
        try:
            for frame in results:
                writer.write_frame(frame["index"], frame["image"], frame["regions"], frame["nuclei"],
                                   frame["record"])
                bar.update(1)
        finally:
            bar.close()
            close = getattr(results, "close", None)
            if close is not None:
                close()
    return SimDataset(writer.path)
