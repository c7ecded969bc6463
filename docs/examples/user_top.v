// A user's own Verilog around a generated engine: docs/integration.md walks through it.
// Engine: accelsmith generate os_4x4_int8 (4x4 output-stationary INT8 array, 24-bit sums).
// One job: K = 2, so C = A (4x2) x B (2x4); the result rows are checked and CYCLES printed
// (2 + 7 + 4 = 13 for this engine: K_STEPS + pipeline latency + m_tile, as the manifest says).
// Icarus: iverilog -g2005 -o sim user_top.v bitweight_systolic_os_baseline_4x4_s8xs8_acc24.v
`timescale 1ns/1ps
module user_top;
    reg clk = 0;
    reg rst = 1;
    always #5 clk = ~clk;

    // Ports as the manifest lists them ("ports", "streams", "integration").
    reg  [31:0] a_payload = 0;  reg a_valid = 0;  wire a_ready;
    reg  [31:0] b_payload = 0;  reg b_valid = 0;  wire b_ready;
    wire [96:0] c_payload;      wire c_valid;     reg  c_ready = 1;
    reg  [1:0]  csr_addr = 0;   reg csr_w_en = 0; reg [31:0] csr_w_data = 0;
    wire [31:0] csr_r_data;

    bitweight_systolic_os_baseline_4x4_s8xs8_acc24 engine (
        .clk(clk), .rst(rst),
        .a__payload(a_payload), .a__valid(a_valid), .a__ready(a_ready),
        .b__payload(b_payload), .b__valid(b_valid), .b__ready(b_ready),
        .c__payload(c_payload), .c__valid(c_valid), .c__ready(c_ready),
        .csr__addr(csr_addr), .csr__w_en(csr_w_en), .csr__w_data(csr_w_data),
        .csr__r_data(csr_r_data));

    // Register addresses (word addresses) from the manifest's "registers".
    localparam CTRL = 0, STATUS = 1, K_STEPS = 2, CYCLES = 3;
    localparam START = 32'd1, BUSY = 32'd1, DONE = 32'd2;

    // A is 4x2, B is 2x4 (signed 8-bit); expected C = A x B, written out below.
    reg signed [7:0]  A [0:3][0:1];
    reg signed [7:0]  B [0:1][0:3];
    reg signed [23:0] expected, got;
    integer r, c, k, errors, rows;

    // Writes take effect at the rising edge that ends the cycle with w_en high.
    task write_reg(input [1:0] addr, input [31:0] value);
        begin
            @(negedge clk) begin csr_addr = addr; csr_w_data = value; csr_w_en = 1; end
            @(negedge clk) csr_w_en = 0;
        end
    endtask

    // Reads are combinational: r_data shows the register at addr in the same cycle.
    task read_reg(input [1:0] addr, output [31:0] value);
        begin
            @(negedge clk) csr_addr = addr;
            #1 value = csr_r_data;
        end
    endtask

    // Operand streams: the step-s beat stays on a (b) from a falling edge until a rising edge
    // sees a_ready (b_ready); the next beat follows on the next falling edge, without a gap.
    integer a_sent = 0, b_sent = 0;
    reg feeding = 0;
    always @(negedge clk) begin
        a_valid = feeding && a_sent < 2;
        b_valid = feeding && b_sent < 2;
        if (a_valid) a_payload = {A[3][a_sent], A[2][a_sent], A[1][a_sent], A[0][a_sent]};
        if (b_valid) b_payload = {B[b_sent][3], B[b_sent][2], B[b_sent][1], B[b_sent][0]};
    end
    always @(posedge clk) begin     // the design's registers update after this samples
        if (a_valid && a_ready) a_sent = a_sent + 1;
        if (b_valid && b_ready) b_sent = b_sent + 1;
    end

    reg [31:0] status, cycles;

    initial begin
        for (r = 0; r < 4; r = r + 1)
            for (k = 0; k < 2; k = k + 1)
                A[r][k] = (r + 1) * (k == 0 ? 3 : -5);              // 3, 6, 9, 12 / -5 .. -20
        for (k = 0; k < 2; k = k + 1)
            for (c = 0; c < 4; c = c + 1)
                B[k][c] = (k == 0) ? 10 * (c + 1) : -128 + c;       // 10 .. 40 / -128 .. -125
        errors = 0;
        rows = 0;
        // Synchronous, active-high reset: hold rst for a couple of rising edges.
        repeat (2) @(posedge clk);
        @(negedge clk) rst = 0;

        write_reg(K_STEPS, 2);                                       // K = 2 steps of one k
        // Operand beats may wait on the streams before START: the engine takes them when the
        // job runs, so it runs without a stall (CYCLES = K_STEPS + latency + m_tile).
        feeding = 1;
        write_reg(CTRL, START);
    end

    // Result rows: one beat per row, element c in bits [c*24, (c+1)*24), 'last' at bit 96.
    always @(posedge clk) begin
        if (c_valid && c_ready) begin
            for (c = 0; c < 4; c = c + 1) begin
                expected = A[rows][0] * B[0][c] + A[rows][1] * B[1][c];
                got = c_payload[c * 24 +: 24];
                if (got !== expected) begin
                    $display("row %0d col %0d: got %0d, expected %0d", rows, c, got, expected);
                    errors = errors + 1;
                end
            end
            if (c_payload[96] !== (rows == 3)) begin
                $display("row %0d: last = %b", rows, c_payload[96]);
                errors = errors + 1;
            end
            rows = rows + 1;
        end
    end

    initial begin
        wait (rows == 4);
        status = BUSY;
        while (status & BUSY) read_reg(STATUS, status);
        read_reg(CYCLES, cycles);
        if (errors == 0 && (status & DONE))
            $display("PASS: 4 rows of C = A x B, %0d beats on a and b, CYCLES = %0d", a_sent,
                     cycles);
        else
            $display("FAIL: %0d errors, STATUS = %0h", errors, status);
        $finish;
    end

    initial begin
        #20000 $display("FAIL: timeout");
        $finish;
    end
endmodule
