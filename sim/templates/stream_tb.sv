// Bulk-streaming testbench wrapper around one stream-in/stream-out DUT.
//
// The whole job runs inside the simulator so the host (cocotb, or a plain C++ main) does not act
// on every clock cycle: input beats are read from a binary file as the DUT accepts them, sent with
// optional pseudo-random valid gaps, output beats are appended to a binary file under optional
// pseudo-random backpressure, cycles are counted, a liveness watchdog stops a design that stopped
// moving, and `done` rises once the expected number of output beats has arrived and the design
// has settled (or it is stuck).
//
// Settling: an output stream can end before the design is idle (a pool or a strided window
// drops the last rows of a frame, so upstream stages still work after the last output). With
// a settle file, the run goes on after the last output beat (inputs still offered) until every
// listed counter holds its expected value (e.g. every stage's input and output beats), and
// only then are the counters sampled.
//
// Beats are streamed with $fread/$fwrite instead of being held in $readmemh/$writememh memories:
// the hex parser of $readmemh cost about 0.9 us per 200-bit beat (more than simulating a cycle),
// and fixed-size memories would tie every build to a maximum job size.
//
// File formats:
//   in_file:  per beat ceil(W_IN/8) bytes, most significant byte first (what $fread expects)
//   out_file: per beat 4*ceil(W_OUT/32) bytes, least significant byte first ($fwrite "%u")
//
// Template fields are written as an upper-case name between at-signs and are filled in by
// sim/wrapper.py (module names, widths, the perf port hookup).
//
// Plusargs:
//   +in_file=PATH      binary input beats (needed when n_in > 0)
//   +out_file=PATH     binary output beats (always needed)
//   +summary_file=PATH one "name value" pair per line, written when done (hosts without VPI)
//   +n_in=N +n_out=M   number of input beats to send / output beats to wait for
//   +liveness=L        cycles without any handshake before the run is declared stuck
//   +in_prob=P         input valid probability in 1/256 steps (256 = always valid)
//   +out_prob=P        output ready probability in 1/256 steps (256 = always ready)
//   +seed=S            seed of the gap/backpressure generators
//   +settle_file=PATH  lines "K V": after the last output, wait until counter K equals V (mod 2^32)
//   +finish            call $finish once done (for hosts that do not stop the simulation)
//
// Time unit: the build passes --timescale 1ns/1ps (a `timescale here would make Verilator
// demand one in the generated DUT too); the clock period is 10 time units.

module @TB_NAME@;
  localparam int W_IN = @W_IN@;
  localparam int W_OUT = @W_OUT@;
  localparam int NC = @NC@;
  localparam int PERF_W = @PERF_W@;
  localparam logic [7:0] RESET_CYCLES = 8'd4;

  // Clock generated here (needs --timing): measured about twice as fast as a cocotb Clock.
  logic clk = 1'b0;
  always #5 clk = ~clk;

  // ---- job configuration ----
  int unsigned n_in = 0;
  int unsigned n_out = 0;
  int unsigned liveness = 10000;
  int unsigned in_prob = 256;
  int unsigned out_prob = 256;
  int unsigned seed = 1;
  bit finish_on_done = 1'b0;
  string in_file = "";
  string out_file = "";
  string summary_file = "";
  string settle_file = "";
  int in_fd = 0;
  int out_fd = 0;
  // settle condition: the counters under settle_mask must equal settle_target
  logic [PERF_W-1:0] settle_mask = '0;
  logic [PERF_W-1:0] settle_target = '0;

  initial begin
    void'($value$plusargs("n_in=%d", n_in));
    void'($value$plusargs("n_out=%d", n_out));
    void'($value$plusargs("liveness=%d", liveness));
    void'($value$plusargs("in_prob=%d", in_prob));
    void'($value$plusargs("out_prob=%d", out_prob));
    void'($value$plusargs("seed=%d", seed));
    void'($value$plusargs("in_file=%s", in_file));
    void'($value$plusargs("out_file=%s", out_file));
    void'($value$plusargs("summary_file=%s", summary_file));
    void'($value$plusargs("settle_file=%s", settle_file));
    finish_on_done = $test$plusargs("finish") != 0;
    if (settle_file != "") begin
      int sfd;
      int k;                 // signed: with NC = 0 an unsigned `k >= NC` is constant (lint)
      longint unsigned v;
      sfd = $fopen(settle_file, "r");
      if (sfd == 0) $fatal(1, "stream_tb: cannot open settle file '%s'", settle_file);
      while ($fscanf(sfd, "%d %d", k, v) == 2) begin
        if (k < 0 || k >= NC)
          $fatal(1, "stream_tb: settle counter %0d out of range (NC=%0d)", k, NC);
        settle_mask[32*k +: 32] = 32'hFFFFFFFF;
        settle_target[32*k +: 32] = v[31:0];
      end
      $fclose(sfd);
    end
    if (n_in != 0) begin
      in_fd = $fopen(in_file, "rb");
      if (in_fd == 0) $fatal(1, "stream_tb: cannot open input file '%s'", in_file);
    end
    out_fd = $fopen(out_file, "wb");
    if (out_fd == 0) $fatal(1, "stream_tb: cannot open output file '%s'", out_file);
  end

  // ---- reset: held for RESET_CYCLES clock edges, released synchronously ----
  logic [7:0] rst_count = 8'd0;
  wire rst = rst_count != RESET_CYCLES;
  always @(posedge clk) if (rst) rst_count <= rst_count + 8'd1;

  // ---- state ----
  logic [63:0] cycle = 64'd0;            // cycles since reset release (frozen once finished)
  logic [63:0] first_in_cycle = '1;      // cycle of the first input handshake (all ones: none)
  logic [63:0] last_out_cycle = '1;      // cycle of the last output handshake (all ones: none)
  logic [63:0] total_cycles = 64'd0;     // cycles from reset release through the final cycle
  logic [31:0] in_count = 32'd0;         // input beats accepted by the DUT
  logic [31:0] out_count = 32'd0;        // output beats captured
  logic [31:0] idle = 32'd0;             // cycles since the last handshake on either stream
  logic finished = 1'b0;
  logic outputs_done = 1'b0;             // every expected output beat has arrived
  logic stuck = 1'b0;
  logic done = 1'b0;
  logic [PERF_W-1:0] perf_final = '0;    // perf counters as they were after the final cycle
  logic [W_IN-1:0] beat;

  // ---- DUT ----
  logic i_valid = 1'b0;
  wire i_ready;
  logic [W_IN-1:0] i_payload = '0;
  wire o_valid;
  logic o_ready = 1'b0;
  wire [W_OUT-1:0] o_payload;
  wire [PERF_W-1:0] perf_flat;
@PERF_ASSIGN@
  @DUT_TOP@ dut (
    .clk(clk),
    .rst(rst),
    .i__valid(i_valid & ~finished),
    .i__ready(i_ready),
    .i__payload(i_payload),
    .o__valid(o_valid),
    .o__ready(o_ready & ~finished),
    .o__payload(o_payload)@PERF_CONN@
  );

  // ---- gap / backpressure generators (xorshift32, one per stream) ----
  function automatic logic [31:0] xorshift32(input logic [31:0] x);
    logic [31:0] y;
    y = x ^ (x << 13);
    y = y ^ (y >> 17);
    y = y ^ (y << 5);
    return y;
  endfunction

  logic [31:0] rng_in = 32'h1;
  logic [31:0] rng_out = 32'h2;
  wire in_gap_ok = {24'd0, rng_in[7:0]} < in_prob;
  wire out_ready_next = {24'd0, rng_out[7:0]} < out_prob;

  wire in_fire = i_valid & i_ready & ~finished;
  wire out_fire = o_valid & o_ready & ~finished;
  wire [31:0] in_next = in_count + {31'd0, in_fire};
  wire [31:0] out_next = out_count + {31'd0, out_fire};
  // settled: the listed counters hold their targets (always, without a settle file)
  wire settled = ((perf_flat ^ settle_target) & settle_mask) == '0;
  logic [PERF_W-1:0] settle_prev = '0;
  wire settle_progress = ((perf_flat ^ settle_prev) & settle_mask) != '0;

  always @(posedge clk) begin
    rng_in <= xorshift32(rng_in);
    rng_out <= xorshift32(rng_out);
    if (rst) begin
      if (rst_count == 8'd0) begin
        rng_in <= (seed == 0) ? 32'h9e3779b9 : seed;
        rng_out <= ((seed == 0) ? 32'h9e3779b9 : seed) ^ 32'h6a09e667;
      end
      o_ready <= out_ready_next;
      // Present the first beat on the last reset edge so it can be taken in cycle 0.
      if (rst_count == RESET_CYCLES - 8'd1 && n_in != 0) begin
        void'($fread(beat, in_fd));
        i_payload <= beat;
        i_valid <= in_gap_ok;
      end
    end else if (!finished) begin
      cycle <= cycle + 64'd1;
      // A source must hold valid until its beat is taken; only then may it insert a gap.
      if (in_fire) begin
        in_count <= in_next;
        if (in_count == 32'd0) first_in_cycle <= cycle;
        if (in_next < n_in) begin
          void'($fread(beat, in_fd));
          i_payload <= beat;
        end
      end
      if (in_fire || !i_valid) i_valid <= (in_next < n_in) && in_gap_ok;
      o_ready <= out_ready_next;
      if (out_fire) begin
        $fwrite(out_fd, "%u", o_payload);
        out_count <= out_next;
        last_out_cycle <= cycle;
      end
      settle_prev <= perf_flat;
      idle <= (in_fire || out_fire || settle_progress) ? 32'd0 : idle + 32'd1;
      if (!outputs_done && out_next >= n_out) begin
        outputs_done <= 1'b1;
        total_cycles <= cycle + 64'd1;
        if (settle_mask == '0) finished <= 1'b1;
      end else if (outputs_done && settled) begin
        finished <= 1'b1;
      end else if (!in_fire && !out_fire && !settle_progress && idle + 32'd1 >= liveness) begin
        finished <= 1'b1;
        stuck <= 1'b1;
        total_cycles <= cycle + 64'd1;
      end
    end
  end

  // ---- wrap-up, one edge after finishing: flush outputs, snapshot counters, raise done ----
  // Handshakes are masked once finished, and the counters sampled here include the final
  // cycle but nothing after it.
  always @(posedge clk) begin
    if (finished && !done) begin
      int fd;
      if (in_fd != 0) $fclose(in_fd);
      $fclose(out_fd);
      if (summary_file != "") begin
        fd = $fopen(summary_file, "w");
        if (fd == 0) $fatal(1, "stream_tb: cannot open summary file '%s'", summary_file);
        $fwrite(fd, "stuck %0d\nin_count %0d\nout_count %0d\ntotal_cycles %0d\n",
                stuck, in_count, out_count, total_cycles);
        $fwrite(fd, "first_in_cycle %0d\nlast_out_cycle %0d\ncycle %0d\nperf %0h\n",
                first_in_cycle, last_out_cycle, cycle, perf_flat);
        $fclose(fd);
      end
      perf_final <= perf_flat;
      done <= 1'b1;
      if (finish_on_done) $finish;
    end
  end
endmodule
