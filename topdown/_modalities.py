"""The imaging modalities topdown simulates, trains on and segments (shared by every package)."""

#: ``"he"``: H&E brightfield (dark stain on white glass); ``"dapi"``: DAPI fluorescence
#: (bright nuclei on dark glass). Spec files, ``simulate``, ``SegModel`` and the CLI accept these.
MODALITIES = ("he", "dapi")
