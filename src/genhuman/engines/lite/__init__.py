"""The lite engine: a portrait talks on an ordinary CPU, with no generative weights.

``deform`` builds the displacement bases from the face mesh, ``mouth_interior`` paints
the mouth where the lips part, ``motion`` plans blinks and head motion, ``render``
makes one frame, ``engine`` runs a whole video.
"""

from genhuman.engines.lite.engine import LiteEngine

__all__ = ["LiteEngine"]
