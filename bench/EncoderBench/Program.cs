// Prints encoder throughput figures: pgoutput text values → ChangeBatchBuilder → Arrow IPC stream (Apache.Arrow's writer),
// and reading back with Apache.Arrow's reader. bench/EncoderBench/compare.sh runs another commit's build beside this one.
// With --designs (after those figures) or --designs-only: the record designs of issue 11 side by side (Designs.cs): (a) one
// record batch per source transaction inside one stream, (b) one record batch with per-row _xid/_commit_lsn/_commit_ts
// (implemented), and (b) with Arrow body compression; --scale F scales their record counts.
// Usage: dotnet run -c Release --project bench/EncoderBench [rows-per-batch] [batches] [--designs | --designs-only] [--scale F]
using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;

var designsOnly = args.Contains("--designs-only");
var scaleAt = Array.IndexOf(args, "--scale");
var scale = scaleAt >= 0 ? double.Parse(args[scaleAt + 1], CultureInfo.InvariantCulture) : 1.0;
var numbers = args.Where((a, i) => !a.StartsWith("--", StringComparison.Ordinal) && (scaleAt < 0 || i != scaleAt + 1)).ToArray();
var rowsPerBatch = numbers.Length > 0 ? int.Parse(numbers[0], CultureInfo.InvariantCulture) : 1000;
var batches = numbers.Length > 1 ? int.Parse(numbers[1], CultureInfo.InvariantCulture) : 2000;
if (designsOnly)
{
    Designs.Run(scale);
    return;
}

var relation = new PgRelation(16384, "public", "orders", 'd',
[
    new PgColumn("id", PgOid.Int8, -1, true),
    new PgColumn("customer", PgOid.Int4, -1, false),
    new PgColumn("amount", PgOid.Numeric, ((12 << 16) | 2) + 4, false),
    new PgColumn("status", PgOid.Varchar, 20 + 4, false),
    new PgColumn("note", PgOid.Text, -1, false),
    new PgColumn("created", PgOid.TimestampTz, -1, false),
    new PgColumn("ref", PgOid.Uuid, -1, false),
    new PgColumn("paid", PgOid.Bool, -1, false),
]);

byte[][] row =
[
    "1234567"u8.ToArray(),
    "42"u8.ToArray(),
    "-12345.67"u8.ToArray(),
    "shipped"u8.ToArray(),
    Encoding.UTF8.GetBytes(new string('n', 60)),
    "2024-01-02 03:04:05.123456+00"u8.ToArray(),
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"u8.ToArray(),
    "t"u8.ToArray(),
];

using var builder = new ChangeBatchBuilder(relation);
var output = new ArrayBufferWriter<byte>(1 << 20);

void Run(int count)
{
    for (var b = 0; b < count; b++)
    {
        for (var r = 0; r < rowsPerBatch; r++)
        {
            builder.BeginRow(ChangeOp.Insert, (ulong)r);
            foreach (var value in row)
            {
                builder.AppendValue(value, TupleFormat.Text);
            }

            builder.EndRow();
        }

        output.ResetWrittenCount();
        builder.WriteStream(output);
    }
}

Run(Math.Max(1, batches / 10)); // warm-up
var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
var watch = Stopwatch.StartNew();
Run(batches);
watch.Stop();
var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
var rows = (double)rowsPerBatch * batches;
Console.WriteLine($"encode: {rows / watch.Elapsed.TotalSeconds:N0} rows/s, {rows * row.Sum(v => v.Length) / watch.Elapsed.TotalSeconds / 1e6:N1} MB/s of text input, " +
    $"{output.WrittenCount:N0} bytes per {rowsPerBatch}-row stream, {allocated / (double)batches:N0} bytes allocated per stream");

var stream = output.WrittenSpan.ToArray();
watch.Restart();
var reads = Math.Max(1, batches / 4);
long checksum = 0;
for (var i = 0; i < reads; i++)
{
    checksum += ArrowPayload.Read(stream).Batches[0].Length;
}

watch.Stop();
Console.WriteLine($"decode: {reads / watch.Elapsed.TotalSeconds:N0} streams/s ({checksum / watch.Elapsed.TotalSeconds:N0} rows/s, Apache.Arrow ArrowStreamReader: schema and batch metadata, zero-copy buffers)");

// Allocation breakdown of one append+write cycle on this thread.
var t0 = GC.GetAllocatedBytesForCurrentThread();
for (var r = 0; r < rowsPerBatch; r++)
{
    builder.BeginRow(ChangeOp.Insert, (ulong)r);
    foreach (var value in row)
    {
        builder.AppendValue(value, TupleFormat.Text);
    }

    builder.EndRow();
}

var t1 = GC.GetAllocatedBytesForCurrentThread();
output.ResetWrittenCount();
builder.WriteStream(output);
var t2 = GC.GetAllocatedBytesForCurrentThread();
Console.WriteLine($"allocated on this thread: {t1 - t0:N0} bytes appending {rowsPerBatch} rows, {t2 - t1:N0} bytes writing the stream");

if (args.Contains("--designs"))
{
    Console.WriteLine();
    Designs.Run(scale);
}
