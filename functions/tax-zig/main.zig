//! tax-zig: the `tax` example (functions/tax) in Zig, a WASI command for
//! wasm32-wasi. A Gojinn-style wasi-json function: the request arrives as
//! JSON on stdin, the response goes as JSON to stdout. Body
//! {"id": string or number, "value": number} -> 200
//! {"order_id": id, "total_final": value * 1.15} rounded to 2 decimals;
//! any other body -> 400 {"error": ...}.
const std = @import("std");

const Request = struct {
    body: []const u8 = "",
};

const Order = struct {
    id: std.json.Value,
    value: f64,
};

const tax_rate = 0.15;

pub fn main(init: std.process.Init) !void {
    const arena = init.arena.allocator();
    const io = init.io;

    var in_buf: [4096]u8 = undefined;
    var stdin = std.Io.File.stdin().readerStreaming(io, &in_buf);
    const input = try stdin.interface.allocRemaining(arena, .unlimited);
    const request = try std.json.parseFromSliceLeaky(Request, arena, input, .{ .ignore_unknown_fields = true });

    var out_buf: [4096]u8 = undefined;
    var stdout = std.Io.File.stdout().writerStreaming(io, &out_buf);
    const out = &stdout.interface;

    var body: std.Io.Writer.Allocating = .init(arena);
    const status: u16 = blk: {
        const order = std.json.parseFromSliceLeaky(Order, arena, request.body, .{}) catch |err| {
            try std.json.Stringify.value(.{ .@"error" = try std.fmt.allocPrint(arena, "body must be {{\"id\": string or number, \"value\": number}}: {t}", .{err}) }, .{}, &body.writer);
            break :blk 400;
        };
        switch (order.id) {
            .string, .integer, .float, .number_string => {},
            else => {
                try std.json.Stringify.value(.{ .@"error" = "body must be {\"id\": string or number, \"value\": number}: id" }, .{}, &body.writer);
                break :blk 400;
            },
        }
        const total = @round(order.value * (1.0 + tax_rate) * 100.0) / 100.0;
        if (!std.math.isFinite(total)) {
            try std.json.Stringify.value(.{ .@"error" = "value is out of range" }, .{}, &body.writer);
            break :blk 400;
        }
        try std.json.Stringify.value(.{ .order_id = order.id, .total_final = total }, .{}, &body.writer);
        break :blk 200;
    };

    try std.json.Stringify.value(.{
        .status = status,
        .headers = .{ .@"Content-Type" = [_][]const u8{"application/json"} },
        .body = body.written(),
    }, .{}, out);
    try out.writeByte('\n');
    try out.flush();
}
