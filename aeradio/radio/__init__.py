"""Device backends behind one streaming interface: SoapySDR, ZMQ and SigMF files."""
