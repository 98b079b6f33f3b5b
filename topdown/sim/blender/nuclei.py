"""Nuclei as instanced geometry, with a point level of detail for sub-pixel nuclei.

One vertex per nucleus; a geometry-nodes modifier turns the vertices into either

* **ellipsoids**: a low-poly ico sphere instanced on every vertex, scaled to the nucleus
  ellipsoid and rotated to its angle (nuclei of a few pixels and more), or
* **points**: Cycles' native sphere primitive, one per vertex, with the radius of the
  ellipse's projected area (nuclei smaller than :data:`POINT_LOD_PX` pixels, where shape and
  chromatin texture are below the optical resolution). Cycles builds one BVH over the points
  instead of syncing one object instance per nucleus, which halves the render of a
  whole-brain frame with 40k nuclei.

A *Switch* node picks the branch per frame. Per frame only the vertex data and its
attributes change, so 100k+ nuclei cost one array copy.
"""

from __future__ import annotations

import bpy
import numpy as np

#: per-point attributes (name, bpy type, number of components)
ATTRIBUTES = (("scl", "FLOAT_VECTOR", 3), ("rot", "FLOAT_VECTOR", 3), ("radius", "FLOAT", 1),
              ("tint", "FLOAT_COLOR", 4), ("glow", "FLOAT", 1), ("chromatin", "FLOAT", 1))

#: nuclei whose median long axis is below this many pixels render as points
POINT_LOD_PX = 1.5


def _named(ng: bpy.types.NodeTree, name: str, data_type: str):
    node = ng.nodes.new("GeometryNodeInputNamedAttribute")
    node.data_type = data_type
    node.inputs["Name"].default_value = name
    return node.outputs["Attribute"]


def _instancer_group(material: bpy.types.Material, point_material: bpy.types.Material,
                     subdivisions: int) -> bpy.types.NodeTree:
    ng = bpy.data.node_groups.new("nuclei_instancer", "GeometryNodeTree")
    ng.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    ng.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    n, link = ng.nodes, ng.links.new
    gin, gout = n.new("NodeGroupInput"), n.new("NodeGroupOutput")
    # ellipsoids: an ico sphere on every point
    ico = n.new("GeometryNodeMeshIcoSphere")
    ico.name = "ico_sphere"
    ico.inputs["Radius"].default_value = 0.5
    ico.inputs["Subdivisions"].default_value = int(subdivisions)
    smooth = n.new("GeometryNodeSetShadeSmooth")
    link(ico.outputs["Mesh"], smooth.inputs["Geometry"])
    setmat = n.new("GeometryNodeSetMaterial")
    setmat.name = "ellipsoid_material"
    setmat.inputs["Material"].default_value = material
    link(smooth.outputs["Geometry"], setmat.inputs["Geometry"])
    inst = n.new("GeometryNodeInstanceOnPoints")
    link(gin.outputs["Geometry"], inst.inputs["Points"])
    link(setmat.outputs["Geometry"], inst.inputs["Instance"])
    link(_named(ng, "rot", "FLOAT_VECTOR"), inst.inputs["Rotation"])
    link(_named(ng, "scl", "FLOAT_VECTOR"), inst.inputs["Scale"])
    # points: Cycles spheres, attributes stay on the geometry
    points = n.new("GeometryNodeMeshToPoints")
    link(gin.outputs["Geometry"], points.inputs["Mesh"])
    link(_named(ng, "radius", "FLOAT"), points.inputs["Radius"])
    pointmat = n.new("GeometryNodeSetMaterial")
    pointmat.name = "point_material"
    pointmat.inputs["Material"].default_value = point_material
    link(points.outputs["Points"], pointmat.inputs["Geometry"])
    switch = n.new("GeometryNodeSwitch")
    switch.name = "level_of_detail"
    switch.input_type = "GEOMETRY"
    link(inst.outputs["Instances"], switch.inputs["False"])
    link(pointmat.outputs["Geometry"], switch.inputs["True"])
    link(switch.outputs["Output"], gout.inputs["Geometry"])
    return ng


def make_nuclei_object(scene: bpy.types.Scene, material: bpy.types.Material,
                       point_material: bpy.types.Material, *, subdivisions: int = 2) -> bpy.types.Object:
    """The point-cloud object carrying the nuclei (empty until :func:`set_nuclei`)."""
    mesh = bpy.data.meshes.new("nuclei")
    obj = bpy.data.objects.new("nuclei", mesh)
    scene.collection.objects.link(obj)
    mod = obj.modifiers.new("instancer", "NODES")
    mod.node_group = _instancer_group(material, point_material, subdivisions)
    return obj


def _node(obj: bpy.types.Object, name: str):
    return obj.modifiers["instancer"].node_group.nodes[name]


def set_materials(obj: bpy.types.Object, material: bpy.types.Material,
                  point_material: bpy.types.Material) -> None:
    """Use ``material`` for ellipsoids and ``point_material`` for points (one modality)."""
    for name, mat in (("ellipsoid_material", material), ("point_material", point_material)):
        socket = _node(obj, name).inputs["Material"]
        if socket.default_value != mat:
            socket.default_value = mat


def set_level_of_detail(obj: bpy.types.Object, *, as_points: bool, subdivisions: int) -> None:
    """Render the nuclei as points (``as_points``) or as ico-sphere ellipsoids of ``subdivisions``."""
    switch = _node(obj, "level_of_detail").inputs["Switch"]
    if switch.default_value != bool(as_points):
        switch.default_value = bool(as_points)
    detail = _node(obj, "ico_sphere").inputs["Subdivisions"]
    if detail.default_value != int(subdivisions):
        detail.default_value = int(subdivisions)


def set_nuclei(obj: bpy.types.Object, centres: np.ndarray, attributes: dict[str, np.ndarray]) -> None:
    """Replace the nuclei: ``centres`` (n, 3) world positions, ``attributes`` per :data:`ATTRIBUTES`."""
    mesh = obj.data
    mesh.clear_geometry()
    names = {k for k, _, _ in ATTRIBUTES}
    for name in [a.name for a in mesh.attributes if a.name in names]:
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
