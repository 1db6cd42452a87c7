"""Training data in a family's layout (issue "Training and phased step distillation", item 1).

- :mod:`~genhuman.data.layout`: the prepared folder's file names, manifest rows and a lazy clip loader
  (the contract the trainers read).
- :mod:`~genhuman.data.prepare`: talking-head videos -> that folder (``genhuman data prepare``).
- :mod:`~genhuman.data.synthetic`: a small offline talking-head video set (lite engine + Piper).
"""
