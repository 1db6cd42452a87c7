"""Named index groups of MediaPipe's 478-point face mesh.

Indices follow MediaPipe's canonical face mesh topology (canonical_face_model.obj /
face_mesh_connections.py in google-ai-edge/mediapipe); 468..477 are the iris points
added by ``refine_landmarks=True``. "Left"/"right" are the *subject's*: the subject's
right eye appears on the image's left. Contours are ordered around the shape.
"""

NUM_LANDMARKS = 478

# Mouth
UPPER_LIP_INNER = 13  # middle of the upper lip's inner edge
LOWER_LIP_INNER = 14  # middle of the lower lip's inner edge
UPPER_LIP_OUTER = 0
LOWER_LIP_OUTER = 17
MOUTH_CORNER_RIGHT = 61
MOUTH_CORNER_LEFT = 291
LIPS_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)
LIPS_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)

# Eyes: contour, then the lid pair whose distance measures the blink.
RIGHT_EYE = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
LEFT_EYE = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)
RIGHT_EYE_LIDS = (159, 145)  # upper, lower
LEFT_EYE_LIDS = (386, 374)
RIGHT_EYE_CORNERS = (33, 133)  # outer, inner
LEFT_EYE_CORNERS = (263, 362)
RIGHT_IRIS_CENTER = 468
LEFT_IRIS_CENTER = 473
RIGHT_IRIS = (469, 470, 471, 472)
LEFT_IRIS = (474, 475, 476, 477)
RIGHT_EYEBROW = (46, 53, 52, 65, 55, 70, 63, 105, 66, 107)
LEFT_EYEBROW = (276, 283, 282, 295, 285, 300, 293, 334, 296, 336)

# Nose
NOSE_TIP = 1
NOSE_BRIDGE = (168, 6, 197, 195, 5, 4)
NOSE = (168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 97, 326, 327, 64, 294, 48, 278, 115, 344, 220, 440,
        45, 275)

# Outline
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
CHIN = 152
JAW = (234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361, 323, 454)
FOREHEAD = (10, 338, 297, 332, 109, 67, 103, 151, 9)

# Points that move with the skull but not with speech or blinks: eye corners, nose
# bridge, forehead. Used to estimate head motion between two faces.
STABLE = (33, 133, 362, 263, 168, 6, 197, 195, 10, 151, 9, 107, 336, 70, 300)
