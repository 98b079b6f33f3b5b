"""Shaders for the two looks.

Bright field (H&E): every surface is a *Transparent BSDF* whose colour is a transmission;
the white world behind the section is the lamp, so overlapping nuclei and the tissue slab
multiply like Beer-Lambert absorption. A closed nucleus is crossed twice, so its per-surface
tint is the square root of its transmission.

Fluorescence (DAPI): a black world; surfaces add an emission and let the ray through
(Emission + Transparent), so overlapping nuclei add up like a widefield projection.

Per-nucleus appearance comes from point attributes propagated to the instances and read
with an *Attribute* node of type ``INSTANCER`` (``tint``: RGB, ``glow``: float), so one
material serves every cell type; chromatin texture is a noise in object space shifted by
the instance's random value. Sub-pixel nuclei drawn as Cycles points read the same
attributes from their own geometry (``per_point=True``).
"""

from __future__ import annotations

import bpy


def _new_material(name: str) -> tuple[bpy.types.Material, bpy.types.NodeTree]:
    mat = bpy.data.materials.new(name)
    if mat.node_tree is None:  # pragma: no cover - bpy < 5
        mat.use_nodes = True
    nt = mat.node_tree
    for node in list(nt.nodes):
        nt.nodes.remove(node)
    return mat, nt


def _chromatin(nt: bpy.types.NodeTree, *, scale: float = 2.5):
    """Noise in [0, 1] in the nucleus' own space, shifted per instance (granular chromatin)."""
    tex = nt.nodes.new("ShaderNodeTexCoord")
    info = nt.nodes.new("ShaderNodeObjectInfo")
    shift = nt.nodes.new("ShaderNodeVectorMath")
    shift.operation = "ADD"
    nt.links.new(tex.outputs["Object"], shift.inputs[0])
    mul = nt.nodes.new("ShaderNodeVectorMath")
    mul.operation = "SCALE"
    nt.links.new(info.outputs["Random"], mul.inputs[0])
    mul.inputs["Scale"].default_value = 37.0
    nt.links.new(mul.outputs["Vector"], shift.inputs[1])
    noise = nt.nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = scale
    noise.inputs["Detail"].default_value = 1.0
    nt.links.new(shift.outputs["Vector"], noise.inputs["Vector"])
    return noise.outputs["Fac"]


def _nucleus_attr(nt: bpy.types.NodeTree, name: str, per_point: bool):
    node = nt.nodes.new("ShaderNodeAttribute")
    node.attribute_type = "GEOMETRY" if per_point else "INSTANCER"
    node.attribute_name = name
    return node


def nucleus_material(modality: str, *, per_point: bool = False) -> bpy.types.Material:
    """One material for all nuclei; colour/brightness per nucleus from attributes.

    ``per_point`` reads the attributes from a point cloud's own points instead of from the
    instancer of ico-sphere ellipsoids. A ray meets a Cycles point once, where it crosses
    a closed ellipsoid twice, so a point's surface counts double: squared transmission
    (H&E), doubled emission (DAPI).
    """
    crossings = 1 if per_point else 2
    mat, nt = _new_material(f"nucleus_{modality}{'_points' if per_point else ''}")
    out = nt.nodes.new("ShaderNodeOutputMaterial")
    chrom = _chromatin(nt)
    amount = _nucleus_attr(nt, "chromatin", per_point).outputs["Fac"]
    fac = nt.nodes.new("ShaderNodeMath")
    fac.operation = "MULTIPLY"
    nt.links.new(chrom, fac.inputs[0])
    nt.links.new(amount, fac.inputs[1])
    if modality == "dapi":
        glow = _nucleus_attr(nt, "glow", per_point).outputs["Fac"]
        strength = nt.nodes.new("ShaderNodeMath")
        strength.operation = "MULTIPLY_ADD"  # glow * (0.4 + chromatin noise)
        nt.links.new(fac.outputs[0], strength.inputs[0])
        nt.links.new(glow, strength.inputs[1])
        bright = nt.nodes.new("ShaderNodeMath")
        bright.operation = "MULTIPLY"
        nt.links.new(glow, bright.inputs[0])
        bright.inputs[1].default_value = 0.6
        nt.links.new(bright.outputs[0], strength.inputs[2])
        per_surface = nt.nodes.new("ShaderNodeMath")
        per_surface.operation = "MULTIPLY"
        nt.links.new(strength.outputs[0], per_surface.inputs[0])
        per_surface.inputs[1].default_value = 2.0 / crossings
        emit = nt.nodes.new("ShaderNodeEmission")
        emit.inputs["Color"].default_value = (1.0, 1.0, 1.0, 1.0)
        nt.links.new(per_surface.outputs[0], emit.inputs["Strength"])
        trans = nt.nodes.new("ShaderNodeBsdfTransparent")
        trans.inputs["Color"].default_value = (1.0, 1.0, 1.0, 1.0)
        add = nt.nodes.new("ShaderNodeAddShader")
        nt.links.new(emit.outputs[0], add.inputs[0])
        nt.links.new(trans.outputs[0], add.inputs[1])
        nt.links.new(add.outputs[0], out.inputs["Surface"])
    else:
        tint = _nucleus_attr(nt, "tint", per_point).outputs["Color"]
        dark = nt.nodes.new("ShaderNodeMix")  # clumped chromatin: tint -> tint * tint
        dark.data_type = "RGBA"
        dark.blend_type = "MULTIPLY"
        nt.links.new(fac.outputs[0], dark.inputs["Factor"])
        nt.links.new(tint, dark.inputs[6])
        nt.links.new(tint, dark.inputs[7])
        colour = dark.outputs[2]
        if crossings == 1:  # both surfaces' transmission on the one crossing
            square = nt.nodes.new("ShaderNodeMix")
            square.data_type = "RGBA"
            square.blend_type = "MULTIPLY"
            square.inputs["Factor"].default_value = 1.0
            nt.links.new(colour, square.inputs[6])
            nt.links.new(colour, square.inputs[7])
            colour = square.outputs[2]
        trans = nt.nodes.new("ShaderNodeBsdfTransparent")
        nt.links.new(colour, trans.inputs["Color"])
        nt.links.new(trans.outputs[0], out.inputs["Surface"])
    return mat


def slab_material(modality: str, image: bpy.types.Image) -> bpy.types.Material:
    """Tissue slab (stroma / neuropil): transmission (H&E) or autofluorescence (DAPI) from ``image``."""
    mat, nt = _new_material(f"slab_{modality}")
    out = nt.nodes.new("ShaderNodeOutputMaterial")
    tex = nt.nodes.new("ShaderNodeTexImage")
    tex.image = image
    tex.interpolation = "Linear"
    tex.extension = "EXTEND"
    trans = nt.nodes.new("ShaderNodeBsdfTransparent")
    if modality == "dapi":
        trans.inputs["Color"].default_value = (1.0, 1.0, 1.0, 1.0)
        emit = nt.nodes.new("ShaderNodeEmission")
        nt.links.new(tex.outputs["Color"], emit.inputs["Color"])
        emit.inputs["Strength"].default_value = 1.0
        add = nt.nodes.new("ShaderNodeAddShader")
        nt.links.new(emit.outputs[0], add.inputs[0])
        nt.links.new(trans.outputs[0], add.inputs[1])
        nt.links.new(add.outputs[0], out.inputs["Surface"])
    else:
        nt.links.new(tex.outputs["Color"], trans.inputs["Color"])
        nt.links.new(trans.outputs[0], out.inputs["Surface"])
    return mat
