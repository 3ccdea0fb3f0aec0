using System.Buffers;
using System.Diagnostics;
using System.Text;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Serialization.Tests.Ipc;

/// <summary>
/// Reads what we write with an independent implementation (npm <c>apache-arrow</c>). Runs only when
/// <c>WALBRIDGE_ARROWJS</c> names a directory whose <c>node_modules</c> holds apache-arrow
/// (e.g. <c>cd /tmp/arrowjs &amp;&amp; npm install apache-arrow@21.2.0</c>); otherwise it does nothing.
/// </summary>
public class ArrowJsInteropTests
{
    private const string Script = """
        const fs = require('fs');
        const { tableFromIPC } = require('apache-arrow');
        const t = tableFromIPC(fs.readFileSync(process.argv[2]));
        const out = { fields: t.schema.fields.map(f => `${f.name}:${f.type}`), metadata: [...t.schema.metadata], rows: [] };
        for (let i = 0; i < t.numRows; i++) {
          const r = t.get(i).toJSON();
          for (const k of Object.keys(r)) {
            const v = r[k];
            if (v !== null && typeof v === 'object') r[k] = JSON.stringify(v, (_, x) => typeof x === 'bigint' ? x.toString() : (x instanceof Uint8Array ? Buffer.from(x).toString('hex') : x));
            else if (typeof v === 'bigint') r[k] = v.toString();
          }
          out.rows.push(r);
        }
        console.log(JSON.stringify(out));
        """;

    [Fact]
    public void Apache_arrow_js_reads_a_change_batch()
    {
        string? dir = Environment.GetEnvironmentVariable("WALBRIDGE_ARROWJS");
        if (string.IsNullOrEmpty(dir))
        {
            return;
        }

        var relation = new PgRelation(7, "public", "items", 'f',
        [
            new PgColumn("id", PgOid.Int8, -1, true),
            new PgColumn("price", PgOid.Numeric, ((10 << 16) | 2) + 4, false),
            new PgColumn("name", PgOid.Text, -1, false),
            new PgColumn("at", PgOid.TimestampTz, -1, false),
            new PgColumn("d", PgOid.Date, -1, false),
            new PgColumn("ok", PgOid.Bool, -1, false),
            new PgColumn("f", PgOid.Float8, -1, false),
            new PgColumn("u", PgOid.Uuid, -1, false),
        ]);
        using var b = new ChangeBatchBuilder(relation);
        string[][] rows =
        [
            ["1", "12.50", "héllo", "2024-01-02 03:04:05.123456+00", "2024-01-02", "t", "1.5", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"],
            ["2", "-0.01", "", "1969-12-31 23:59:59+00", "0044-03-15 BC", "f", "-Infinity", "00000000-0000-0000-0000-000000000000"],
        ];
        foreach (var row in rows)
        {
            b.BeginRow(ChangeOp.Update, 42);
            foreach (string v in row)
            {
                b.AppendValue(Encoding.UTF8.GetBytes(v), TupleFormat.Text);
            }

            b.BeginBefore();
            b.AppendValue("1"u8, TupleFormat.Text);
            for (int i = 1; i < row.Length; i++)
            {
                b.AppendUnchangedToast();
            }

            b.EndRow();
        }

        b.BeginRow(ChangeOp.Delete, 43);
        b.AppendValue("3"u8, TupleFormat.Text);
        for (int i = 1; i < 8; i++)
        {
            b.AppendNull();
        }

        b.EndRow();
        var output = new ArrayBufferWriter<byte>();
        b.WriteStream(output);
        string streamPath = Path.Combine(Path.GetTempPath(), $"walbridge-{Guid.NewGuid():N}.arrows");
        string scriptPath = Path.Combine(dir, "walbridge-read.js");
        File.WriteAllBytes(streamPath, output.WrittenSpan.ToArray());
        File.WriteAllText(scriptPath, Script);
        try
        {
            var psi = new ProcessStartInfo("node", [scriptPath, streamPath]) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir };
            using var node = Process.Start(psi)!;
            string stdout = node.StandardOutput.ReadToEnd();
            string stderr = node.StandardError.ReadToEnd();
            node.WaitForExit();
            Assert.True(node.ExitCode == 0, stderr);
            Console.WriteLine(stdout);
            Assert.Contains("\"_op\":\"u\"", stdout, StringComparison.Ordinal);
            Assert.Contains("\"_op\":\"d\"", stdout, StringComparison.Ordinal);
            Assert.Contains("\"name\":\"héllo\"", stdout, StringComparison.Ordinal);
            Assert.Contains("\"ok\":true", stdout, StringComparison.Ordinal);
            Assert.Contains("\"_lsn\":\"42\"", stdout, StringComparison.Ordinal);
            Assert.Contains("\"at\":1704164645123.456", stdout, StringComparison.Ordinal);
            Assert.Contains("pg.primary_key", stdout, StringComparison.Ordinal);
            Assert.Contains("_before.price", stdout, StringComparison.Ordinal);
            Assert.Contains("1250", stdout, StringComparison.Ordinal); // decimal(10,2) 12.50, unscaled
            Assert.Contains("\"d\":-63517824000000", stdout, StringComparison.Ordinal); // 0044-03-15 BC in ms
            Assert.Contains("\"_before\":null", stdout, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(streamPath);
            File.Delete(scriptPath);
        }
    }
}
