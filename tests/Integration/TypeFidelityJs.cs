using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using WalBridge.Connector.Kafka;

namespace WalBridge.Integration.Tests;

/// <summary>One committed Kafka record as a read_committed consumer sees it.</summary>
internal sealed record KafkaRecord(long Offset, IReadOnlyDictionary<string, string> Headers, byte[] Value)
{
    public string Header(string name) =>
        Headers.TryGetValue(name, out var value) ? value : throw new KeyNotFoundException($"record at offset {Offset} has no header '{name}'");

    /// <summary>Every committed record of <paramref name="topic"/> with rows, in offset order (one partition per table topic); snapshot markers left out.</summary>
    public static List<KafkaRecord> ReadAll(string bootstrapServers, string topic)
    {
        var kafka = new Dictionary<string, string> { ["bootstrap.servers"] = bootstrapServers };
        var records = new List<KafkaRecord>();
        OffsetsTopicReader.ReadToEnd(kafka, topic, message =>
        {
            var headers = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var header in message.Message.Headers)
            {
                headers[header.Key] = Encoding.UTF8.GetString(header.GetValueBytes());
            }

            Assert.Equal(0, message.Partition.Value);
            if (headers.GetValueOrDefault(KafkaHeaders.Kind) == KafkaHeaders.KindSnapshot)
            {
                // The initial snapshot's markers (docs/format.md, snapshots) hold no rows.
                return;
            }

            records.Add(new KafkaRecord(message.Offset.Value, headers, message.Message.Value ?? []));
        }, CancellationToken.None, TimeSpan.FromSeconds(120));
        return records;
    }
}

/// <summary>
/// The independent reader: npm apache-arrow through tools/arrow-js/dump.js (see the comment at its top for the JSON
/// shape: fields with metadata and type parameters, exact cells). Never our own reader.
/// </summary>
internal static class ArrowJsDump
{
    /// <summary>tools/arrow-js of this repository; fails (never skips) when apache-arrow is not installed there.</summary>
    public static string ToolDirectory
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "tools", "arrow-js");
                if (File.Exists(Path.Combine(candidate, "dump.js")))
                {
                    Assert.True(File.Exists(Path.Combine(candidate, "node_modules", "apache-arrow", "package.json")),
                        $"npm apache-arrow is not installed in {candidate}: run scripts/setup.sh (or scripts/setup-js.sh).");
                    return candidate;
                }
            }
            Assert.Fail($"tools/arrow-js not found above {AppContext.BaseDirectory}");
            return "";
        }
    }

    /// <summary>Decodes each Arrow IPC stream with apache-arrow; one JSON document per stream.</summary>
    public static List<JsonObject> Dump(IReadOnlyList<byte[]> streams)
    {
        var tool = ToolDirectory;
        var directory = Path.Combine(Path.GetTempPath(), $"walbridge-arrowjs-{Guid.NewGuid():N}");
        Directory.CreateDirectory(directory);
        try
        {
            var files = new List<string>();
            for (var i = 0; i < streams.Count; i++)
            {
                var file = Path.Combine(directory, $"{i:D5}.arrows");
                File.WriteAllBytes(file, streams[i]);
                files.Add(file);
            }
            var psi = new ProcessStartInfo("node", [Path.Combine(tool, "dump.js"), .. files])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = tool,
            };
            using var node = Process.Start(psi) ?? throw new InvalidOperationException("could not start node");
            var stderr = node.StandardError.ReadToEndAsync();
            var documents = new List<JsonObject>();
            while (node.StandardOutput.ReadLine() is { } line)
            {
                documents.Add(JsonNode.Parse(line)!.AsObject());
            }

            node.WaitForExit();
            Assert.True(node.ExitCode == 0, "apache-arrow could not read a payload: " + stderr.Result);
            Assert.Equal(streams.Count, documents.Count);
            return documents;
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    public static string? Meta(JsonObject field, string key) =>
        field["metadata"]!.AsArray().Where(p => (string)p![0]! == key).Select(p => (string?)p![1]).FirstOrDefault();

    public static JsonObject Field(JsonObject document, string name) =>
        document["fields"]!.AsArray().Select(f => f!.AsObject()).Single(f => (string)f["name"]! == name);

    public static JsonArray Column(JsonObject document, string name)
    {
        var fields = document["fields"]!.AsArray();
        var index = -1;
        for (var i = 0; i < fields.Count; i++)
        {
            if ((string)fields[i]!["name"]! == name)
            {
                Assert.True(index < 0, $"two columns named {name}");
                index = i;
            }
        }
        Assert.True(index >= 0, $"no column named {name}");
        return document["columns"]!.AsArray()[index]!.AsArray();
    }
}
