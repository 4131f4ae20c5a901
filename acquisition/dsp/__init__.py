"""Lane-survey signal processing: levelling, detection, dipole location, pipeline.

Pure numpy/scipy: nothing here imports zmq, h5py, serial or the simulator, so
every stage can be fed by hand. Entry points:

- `acquisition.dsp.pipeline.LanePipeline` — streaming, block by block;
- `acquisition.dsp.batch.process_survey` — a whole survey at once (same answer).
"""
