"""Faces: MediaPipe 478-point landmarks for images and video frames, and face crops."""

from genhuman.face import landmark_indices
from genhuman.face.arcface import FaceEmbedder
from genhuman.face.crop import CropTransform, crop_with_transform, face_box_square, paste_back
from genhuman.face.detect import Face, detect_faces, face_landmarks
from genhuman.face.segmentation import person_mask, segment_person
from genhuman.face.tracker import FaceTracker

__all__ = [
    "CropTransform", "Face", "FaceEmbedder", "FaceTracker", "crop_with_transform", "detect_faces", "face_box_square",
    "face_landmarks", "landmark_indices", "paste_back", "person_mask", "segment_person",
]
