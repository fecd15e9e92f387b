"""Defaults of the commands, defined once: the library uses them and the CLI shows them.

Each constant is the default of a library function or settings class (named next to it)
and of the ``aeradio`` option that sets it; ``aeradio CMD --help`` prints it from here
(gr-digital's ``[default=%default]`` habit), so help, API and behaviour cannot drift.
This module imports nothing: :mod:`aeradio.cli` reads it without importing numpy or
torch, and ``aeradio --help`` stays instant. Defaults of the link configuration (the
TOML sections, ``model.json``) are the fields of :mod:`aeradio.core.config`, but for the
few shown by the CLI too, defined here.
"""

# ---- the Rapp PA: training (training.rapp_p, training.rapp_backoff_db) and aeradio channel
#: Rapp PA smoothness p.
DEFAULT_RAPP_P = 3.0
#: Rapp PA saturation above the RMS amplitude of the signal (dB).
DEFAULT_RAPP_BACKOFF_DB = 6.0

# ---- aeradio eval: aeradio.learning.evaluate.sweep_model / simulate_lut ------------------
#: Monte Carlo runs until every decoder has seen this many block errors ...
DEFAULT_EVAL_TARGET_ERRORS = 200
#: ... or this many blocks were sent.
DEFAULT_EVAL_MAX_BLOCKS = 2_000_000
#: Seed of the evaluation's torch generator.
DEFAULT_EVAL_SEED = 1

# ---- aeradio sweep: aeradio.apps.sweep ---------------------------------------------------
#: Models trained per config (training seeds S, S+1, ..., S the config's training.seed).
DEFAULT_SWEEP_SEEDS = 1
#: A point is simulated until this many block errors (+-20 % at 95 %) ...
DEFAULT_SWEEP_TARGET_ERRORS = 100
#: ... or this many blocks: BLER 1e-6 with 100 errors.
DEFAULT_SWEEP_MAX_BLOCKS = 100_000_000

# ---- aeradio tx: aeradio.apps.tx ---------------------------------------------------------
#: Test-pattern frames sent when neither --frames nor --file is given.
DEFAULT_TX_FRAMES = 100
#: Known payloads of ``tx --pattern`` (the first is the default): test patterns (LUT rows),
#: probes (i.i.d. symbols over the amplitude range, :mod:`aeradio.dsp.probe`).
TX_PATTERNS = ("test", "probe")

# ---- aeradio rx: aeradio.apps.rx ---------------------------------------------------------
#: Torch threads of the neural receiver (one: why in :func:`aeradio.apps.rx.cmd_rx`).
DEFAULT_RX_THREADS = 1

# ---- aeradio finetune: aeradio.learning.finetune.FinetuneSettings, learning.dataset ------
#: Adam learning rate of receiver fine-tuning.
DEFAULT_FINETUNE_LEARNING_RATE = 1e-3
#: Epochs (validation checks) at most.
DEFAULT_FINETUNE_MAX_EPOCHS = 40
#: Fraction of the captured frames kept for validation (never trained on).
DEFAULT_VALIDATION_FRACTION = 0.2

# ---- aeradio channel: aeradio.apps.channel, aeradio.flowgraphs.channel_sim ----------------
#: Offset frequency at which --phase-noise-dbc is specified (Hz).
DEFAULT_PHASE_NOISE_OFFSET_HZ = 10e3
#: Period of the channel simulator's status line (s).
DEFAULT_STATS_INTERVAL_S = 5.0

# ---- aeradio calibrate: aeradio.apps.calibrate, aeradio.calibration ----------------------
#: Calibration bursts ``calibrate tx`` sends.
DEFAULT_CALIBRATE_TX_BURSTS = 20
#: Whole bursts ``calibrate rx`` waits for (fewer than TX sends: it may start late).
DEFAULT_CALIBRATE_RX_BURSTS = 10
#: ``calibrate rx`` gives up after this long without a new burst or any sample (s).
DEFAULT_CALIBRATE_TIMEOUT_S = 10.0
#: SNR the gain recommendation aims at (dB), :func:`aeradio.calibration.gain.recommend_gains`.
DEFAULT_TARGET_SNR_DB = 20.0
#: RMS level of the received signal at the ADC the RX gain is set for (dBFS): 15 dB of
#: headroom for the peaks.
DEFAULT_TARGET_LEVEL_DBFS = -15.0
#: Burst detection threshold on the normalized sync metric (a burst at 0 dB SNR scores 0.5),
#: :mod:`aeradio.calibration.detection`.
DEFAULT_DETECTION_THRESHOLD = 0.4

# ---- ZMQ streams -------------------------------------------------------------------------
#: Seconds a ZMQ transmitter waits for a peer to connect before it fails (``tx
#: --connect-timeout-s``), :mod:`aeradio.radio.zmq_stream`.
DEFAULT_CONNECT_TIMEOUT_S = 10.0
#: tx --write-timeout-s: how long one write may wait for the device or the ZMQ peer to take
#: samples (see aeradio.radio.zmq_stream.write_timeout_for for a paced channel).
DEFAULT_WRITE_TIMEOUT_S = 5.0

# ---- aeradio channel-model, finetune --end-to-end: aeradio.learning.channel_model, .end_to_end
#: Gradient steps of ``channel-model fit``.
DEFAULT_CHANNEL_MODEL_STEPS = 2000
#: Gradient steps of ``finetune --end-to-end`` at most (it stops earlier on a plateau).
DEFAULT_END_TO_END_STEPS = 2000
# ---- aeradio train-ota: aeradio.apps.train_ota, aeradio.learning.ota -----------------------
#: Alternating iterations (one receiver batch and one transmitter batch each).
DEFAULT_OTA_ITERATIONS = 200
#: Frames per batch (receiver batch and transmitter batch alike).
DEFAULT_OTA_FRAMES_PER_STEP = 8
#: Standard deviation of the complex perturbation of the transmitted symbols (E|w|^2 = 1).
DEFAULT_OTA_PERTURBATION_STD = 0.3
#: Adam learning rate of the receiver.
DEFAULT_OTA_RX_LEARNING_RATE = 3e-3
#: Adam learning rate of the transmitter from scratch (random LUT).
DEFAULT_OTA_TX_LEARNING_RATE = 3e-2
#: ... and from a trained model: 3e-2 tore the simulation-trained AE(7,8)'s LUT apart on the
#: impaired loop of bench_ota (fresh-frame BLER 3.4e-3 -> 5.2e-3 in 100 iterations); 3e-3 did not.
DEFAULT_OTA_TX_LEARNING_RATE_FINETUNE = 3e-3
#: Adam learning rate of the compander (``--transmitter compander+lut``, the default from a
#: trained model): 1e-2, 3e-2 and 1e-1 all reached fresh-frame BLER 9.3e-3 to 9.6e-3 after
#: 300 iterations on a waveform model of bench_ota's impaired loop (docs/train-ota.md).
DEFAULT_OTA_COMPANDER_LEARNING_RATE = 3e-2
#: From scratch the transmitter's learning rate falls as 1 / (1 + t / this) after t
#: transmitter steps (offline, AE(7,8) from scratch on AWGN symbols at Eb/N0 4 dB after 2500
#: iterations of 16 + 16 frames: BLER 1.10e-2 with it, 1.27e-2 at a constant rate).
DEFAULT_OTA_TX_LR_DECAY_ITERATIONS_SCRATCH = 500
#: Receiver gradient steps per receiver batch.
DEFAULT_OTA_RX_STEPS = 4
#: The best model is written every this many iterations (when it improved).
DEFAULT_OTA_CHECKPOINT_EVERY = 10
#: No frame detected for this long (s) ends the run (exit 2, the last checkpoint kept).
DEFAULT_OTA_STALL_TIMEOUT_S = 15.0
