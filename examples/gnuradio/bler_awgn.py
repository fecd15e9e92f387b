#!/usr/bin/env python3
# -*- coding: utf-8 -*-

#
# SPDX-License-Identifier: GPL-3.0
#
# GNU Radio Python Flow Graph
# Title: aeradio model over an AWGN channel: BLER
# Author: aeradio
# Description: BLER of an aeradio model over GNU Radio's AWGN channel model, with GNU Radio's RRC filters
# GNU Radio version: 3.10.5.1

from aeradio.core.model_dir import load_link_config
from aeradio.gnuradio.model import CHANNEL_MODEL_ADVANCE_SAMPLES, noise_voltage, unit_energy_taps
from aeradio.gnuradio.blocks import BlerCounter
from aeradio.gnuradio.blocks import LutMapper
from aeradio.gnuradio.blocks import NeuralDemapper
from aeradio.gnuradio.model import soft_vector_length
from gnuradio import analog
from gnuradio import blocks
from gnuradio import channels
from gnuradio.filter import firdes
from gnuradio import filter
from gnuradio import gr
from gnuradio.fft import window
import sys
import signal
from argparse import ArgumentParser
from gnuradio.eng_arg import eng_float, intx
from gnuradio import eng_notation




class bler_awgn(gr.top_block):

    def __init__(self, model_dir='models/ae-n7-k8', ebn0_db=8, num_blocks=100000, seed=0):
        gr.top_block.__init__(self, "aeradio model over an AWGN channel: BLER", catch_exceptions=True)

        ##################################################
        # Parameters
        ##################################################
        self.model_dir = model_dir
        self.ebn0_db = ebn0_db
        self.num_blocks = num_blocks
        self.seed = seed

        ##################################################
        # Variables
        ##################################################
        self.link = link = load_link_config(model_dir)
        self.sps = sps = link.radio.samples_per_symbol
        self.span = span = link.radio.rrc_span_symbols
        self.rolloff = rolloff = link.radio.rolloff
        self.rate = rate = link.model.rate
        self.rrc_taps = rrc_taps = unit_energy_taps(firdes.root_raised_cosine(1.0, sps, 1.0, rolloff, span * sps + 1))
        self.channel_noise_voltage = channel_noise_voltage = noise_voltage(ebn0_db, rate)
        self.M = M = link.model.M

        ##################################################
        # Blocks
        ##################################################

        self.interp_fir_filter_xxx_0 = filter.interp_fir_filter_ccf(sps, rrc_taps)
        self.interp_fir_filter_xxx_0.declare_sample_delay(0)
        self.fir_filter_xxx_0 = filter.fir_filter_ccf(sps, rrc_taps)
        self.fir_filter_xxx_0.declare_sample_delay(0)
        self.channels_channel_model_0 = channels.channel_model(
            noise_voltage=channel_noise_voltage,
            frequency_offset=0.0,
            epsilon=1.0,
            taps=[1.0],
            noise_seed=(seed + 1),
            block_tags=False)
        self.blocks_skiphead_0 = blocks.skiphead(gr.sizeof_gr_complex*1, span)
        self.blocks_head_0 = blocks.head(gr.sizeof_int*1, num_blocks)
        self.blocks_delay_0 = blocks.delay(gr.sizeof_gr_complex*1, CHANNEL_MODEL_ADVANCE_SAMPLES)
        self.analog_random_uniform_source_x_0 = analog.random_uniform_source_i(0, M, seed)
        self.aeradio_neural_demapper_0 = NeuralDemapper(model_dir, 'int', 'none', ebn0_db)
        self.aeradio_lut_mapper_0 = LutMapper(model_dir, 'int')
        self.aeradio_bler_counter_0 = BlerCounter('int', True)


        ##################################################
        # Connections
        ##################################################
        self.connect((self.aeradio_lut_mapper_0, 0), (self.interp_fir_filter_xxx_0, 0))
        self.connect((self.aeradio_neural_demapper_0, 0), (self.aeradio_bler_counter_0, 1))
        self.connect((self.analog_random_uniform_source_x_0, 0), (self.blocks_head_0, 0))
        self.connect((self.blocks_delay_0, 0), (self.channels_channel_model_0, 0))
        self.connect((self.blocks_head_0, 0), (self.aeradio_bler_counter_0, 0))
        self.connect((self.blocks_head_0, 0), (self.aeradio_lut_mapper_0, 0))
        self.connect((self.blocks_skiphead_0, 0), (self.aeradio_neural_demapper_0, 0))
        self.connect((self.channels_channel_model_0, 0), (self.fir_filter_xxx_0, 0))
        self.connect((self.fir_filter_xxx_0, 0), (self.blocks_skiphead_0, 0))
        self.connect((self.interp_fir_filter_xxx_0, 0), (self.blocks_delay_0, 0))


    def get_model_dir(self):
        return self.model_dir

    def set_model_dir(self, model_dir):
        self.model_dir = model_dir
        self.set_link(load_link_config(self.model_dir))

    def get_ebn0_db(self):
        return self.ebn0_db

    def set_ebn0_db(self, ebn0_db):
        self.ebn0_db = ebn0_db
        self.set_channel_noise_voltage(noise_voltage(self.ebn0_db, self.rate))

    def get_num_blocks(self):
        return self.num_blocks

    def set_num_blocks(self, num_blocks):
        self.num_blocks = num_blocks
        self.blocks_head_0.set_length(self.num_blocks)

    def get_seed(self):
        return self.seed

    def set_seed(self, seed):
        self.seed = seed

    def get_link(self):
        return self.link

    def set_link(self, link):
        self.link = link

    def get_sps(self):
        return self.sps

    def set_sps(self, sps):
        self.sps = sps
        self.set_rrc_taps(unit_energy_taps(firdes.root_raised_cosine(1.0, self.sps, 1.0, self.rolloff, self.span * self.sps + 1)))

    def get_span(self):
        return self.span

    def set_span(self, span):
        self.span = span
        self.set_rrc_taps(unit_energy_taps(firdes.root_raised_cosine(1.0, self.sps, 1.0, self.rolloff, self.span * self.sps + 1)))

    def get_rolloff(self):
        return self.rolloff

    def set_rolloff(self, rolloff):
        self.rolloff = rolloff
        self.set_rrc_taps(unit_energy_taps(firdes.root_raised_cosine(1.0, self.sps, 1.0, self.rolloff, self.span * self.sps + 1)))

    def get_rate(self):
        return self.rate

    def set_rate(self, rate):
        self.rate = rate
        self.set_channel_noise_voltage(noise_voltage(self.ebn0_db, self.rate))

    def get_rrc_taps(self):
        return self.rrc_taps

    def set_rrc_taps(self, rrc_taps):
        self.rrc_taps = rrc_taps
        self.interp_fir_filter_xxx_0.set_taps(self.rrc_taps)
        self.fir_filter_xxx_0.set_taps(self.rrc_taps)

    def get_channel_noise_voltage(self):
        return self.channel_noise_voltage

    def set_channel_noise_voltage(self, channel_noise_voltage):
        self.channel_noise_voltage = channel_noise_voltage
        self.channels_channel_model_0.set_noise_voltage(self.channel_noise_voltage)

    def get_M(self):
        return self.M

    def set_M(self, M):
        self.M = M



def argument_parser():
    description = "BLER of an aeradio model over GNU Radio's AWGN channel model, with GNU Radio's RRC filters"
    parser = ArgumentParser(description=description)
    parser.add_argument(
        "--model-dir", dest="model_dir", type=str, default='models/ae-n7-k8',
        help="Set Model directory [default=%(default)r]")
    parser.add_argument(
        "--ebn0-db", dest="ebn0_db", type=eng_float, default=eng_notation.num_to_str(float(8)),
        help="Set Eb/N0 (dB) [default=%(default)r]")
    parser.add_argument(
        "--num-blocks", dest="num_blocks", type=intx, default=100000,
        help="Set Blocks sent [default=%(default)r]")
    parser.add_argument(
        "--seed", dest="seed", type=intx, default=0,
        help="Set Seed [default=%(default)r]")
    return parser


def main(top_block_cls=bler_awgn, options=None):
    if options is None:
        options = argument_parser().parse_args()
    tb = top_block_cls(model_dir=options.model_dir, ebn0_db=options.ebn0_db, num_blocks=options.num_blocks, seed=options.seed)

    def sig_handler(sig=None, frame=None):
        tb.stop()
        tb.wait()

        sys.exit(0)

    signal.signal(signal.SIGINT, sig_handler)
    signal.signal(signal.SIGTERM, sig_handler)

    tb.start()

    tb.wait()


if __name__ == '__main__':
    main()
