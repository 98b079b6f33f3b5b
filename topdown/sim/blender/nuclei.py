"""Nuclei as instanced geometry: one vertex per nucleus, a geometry-nodes modifier puts a
low-poly ico sphere on every vertex, scaled to the nucleus ellipsoid and rotated to its
angle. Per frame only the vertex data and its attributes change, so 100k+ nuclei cost one
array copy, and Cycles sees instances of a single mesh.
"""

from __future__ import annotations

import bpy
import numpy as np

#: per-point attributes (name, bpy type, number of components)
ATTRIBUTES = (("scl", "FLOAT_VECTOR", 3), ("rot", "FLOAT_VECTOR", 3),
              ("tint", "FLOAT_COLOR", 4), ("glow", "FLOAT", 1), ("chromatin", "FLOAT", 1))


def _instancer_group(material: bpy.types.Material, subdivisions: int) -> bpy.types.NodeTree:
    ng = bpy.data.node_groups.new("nuclei_instancer", "GeometryNodeTree")
    ng.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    ng.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    n, link = ng.nodes, ng.links.new
    gin, gout = n.new("NodeGroupInput"), n.new("NodeGroupOutput")
    ico = n.new("GeometryNodeMeshIcoSphere")
    ico.inputs["Radius"].default_value = 0.5
    ico.inputs["Subdivisions"].default_value = int(subdivisions)
    smooth = n.new("GeometryNodeSetShadeSmooth")
    link(ico.outputs["Mesh"], smooth.inputs["Geometry"])
    setmat = n.new("GeometryNodeSetMaterial")
    setmat.inputs["Material"].default_value = material
    link(smooth.outputs["Geometry"], setmat.inputs["Geometry"])
    scl, rot = n.new("GeometryNodeInputNamedAttribute"), n.new("GeometryNodeInputNamedAttribute")
    for node, name in ((scl, "scl"), (rot, "rot")):
        node.data_type = "FLOAT_VECTOR"
        node.inputs["Name"].default_value = name
    inst = n.new("GeometryNodeInstanceOnPoints")
    link(gin.outputs["Geometry"], inst.inputs["Points"])
    link(setmat.outputs["Geometry"], inst.inputs["Instance"])
    link(rot.outputs["Attribute"], inst.inputs["Rotation"])
    link(scl.outputs["Attribute"], inst.inputs["Scale"])
    link(inst.outputs["Instances"], gout.inputs["Geometry"])
    return ng


def make_nuclei_object(scene: bpy.types.Scene, material: bpy.types.Material, *,
                       subdivisions: int = 2) -> bpy.types.Object:
    """The point-cloud object carrying the nuclei (empty until :func:`set_nuclei`)."""
    mesh = bpy.data.meshes.new("nuclei")
    obj = bpy.data.objects.new("nuclei", mesh)
    scene.collection.objects.link(obj)
    mod = obj.modifiers.new("instancer", "NODES")
    mod.node_group = _instancer_group(material, subdivisions)
    return obj


def set_nuclei(obj: bpy.types.Object, centres: np.ndarray, attributes: dict[str, np.ndarray]) -> None:
    """Replace the nuclei: ``centres`` (n, 3) world positions, ``attributes`` per :data:`ATTRIBUTES`."""
    mesh = obj.data
    mesh.clear_geometry()
    for name in [a.name for a in mesh.attributes if a.name in dict((k, 0) for k, _, _ in ATTRIBUTES)]:
        mesh.attributes.remove(mesh.attributes[name])
    n = int(len(centres))
    if n:
        mesh.vertices.add(n)
        mesh.vertices.foreach_set("co", np.ascontiguousarray(centres, dtype=np.float32).ravel())
        for name, kind, width in ATTRIBUTES:
            values = np.ascontiguousarray(attributes[name], dtype=np.float32).reshape(n, width)
            attr = mesh.attributes.new(name, kind, "POINT")
            attr.data.foreach_set("color" if kind == "FLOAT_COLOR" else
                                  "vector" if kind == "FLOAT_VECTOR" else "value", values.ravel())
    mesh.update()
