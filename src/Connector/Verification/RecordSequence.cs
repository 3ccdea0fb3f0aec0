using System.Globalization;
using System.Text;
using Confluent.Kafka;
using WalBridge.Connector.Kafka;
using WalBridge.Offsets;

namespace WalBridge.Connector.Verification;

/// <summary>What a table record's headers say about its place in its partition (docs/format.md, Kafka headers).</summary>
/// <param name="FirstCommitLsn"><c>walbridge.first_commit_lsn</c>: the first source transaction with rows in the record.</param>
/// <param name="CommitLsn"><c>pg.commit_lsn</c>: the last one.</param>
/// <param name="Chunk"><c>walbridge.chunk</c>: which piece of its first transaction's rows the record starts with.</param>
/// <param name="LastChunk"><c>walbridge.chunk_last</c>: whether its last transaction's rows end in it.</param>
/// <param name="Transactions"><c>walbridge.transactions</c>, or -1 when absent or not a number.</param>
/// <param name="Rows"><c>walbridge.rows</c>, or -1 when absent or not a number.</param>
/// <param name="Duplicate">Whether the partition held a record with the same first commit LSN and chunk before.</param>
public readonly record struct RecordPlace(Lsn FirstCommitLsn, Lsn CommitLsn, int Chunk, bool LastChunk, int Transactions, long Rows, bool Duplicate);

/// <summary>
/// The header rules of one topic partition's table records, read in offset order, for every reader that checks a topic
/// (our replay, the chaos suite's independent reader): the format version is the current one; no record twice (the
/// identity of a record is its first commit LSN and chunk); commit LSNs only grow, from one record to the next and within
/// a record; a transaction whose rows a record leaves unfinished (<c>walbridge.chunk_last</c> false) is continued by the
/// next record with its next piece; at the end no transaction is left unfinished. Knows nothing of the payload.
/// </summary>
/// <remarks>Not thread-safe: one instance per partition being read.</remarks>
public sealed class RecordSequence
{
    private readonly HashSet<(Lsn First, int Chunk)> _seen = [];
    private readonly HashSet<(Lsn Lsn, string Marker)> _markers = [];
    private Lsn _last;
    /// <summary>Whether the previous record held snapshot rows (those of one snapshot share their commit LSN).</summary>
    private bool _lastWasSnapshot;
    /// <summary>The <c>walbridge.chunk</c> of the last record of snapshot rows.</summary>
    private int _lastChunk;
    /// <summary>The transaction whose rows the previous record left unfinished, and the piece that must come next.</summary>
    private (Lsn Lsn, int Next)? _open;

    /// <summary>
    /// Takes the next record's headers; adds what breaks the rules to <paramref name="violations"/>, each naming
    /// <paramref name="where"/> (the record, e.g. <c>topic[partition]@offset</c>).
    /// </summary>
    public RecordPlace Add(Headers headers, string where, ICollection<string> violations)
    {
        ArgumentNullException.ThrowIfNull(headers);
        ArgumentNullException.ThrowIfNull(violations);
        var format = Header(headers, KafkaHeaders.Format);
        if (format != KafkaHeaders.CurrentFormat)
        {
            violations.Add($"record {where} has {KafkaHeaders.Format} '{format}', not {KafkaHeaders.CurrentFormat}");
        }

        if (Header(headers, KafkaHeaders.Kind) == KafkaHeaders.KindSnapshot)
        {
            // A snapshot marker: no rows, outside the chunk sequence; each marker once per snapshot.
            var marker = Header(headers, KafkaHeaders.Snapshot) ?? "";
            var at = Lsn.Parse(Header(headers, KafkaHeaders.SnapshotLsn) ?? "0/0");
            var again = !_markers.Add((at, marker));
            if (again)
            {
                violations.Add($"duplicate record {where}: snapshot {marker} marker of the snapshot at {at} again");
            }

            if (marker is not ("start" or "end"))
            {
                violations.Add($"record {where} is a snapshot marker with {KafkaHeaders.Snapshot} '{marker}', not start or end");
            }

            return new RecordPlace(at, at, 0, true, 0, 0, again);
        }

        var snapshotRows = Header(headers, KafkaHeaders.Snapshot) == "read";
        var first = Lsn.Parse(Header(headers, KafkaHeaders.FirstCommitLsn) ?? "0/0");
        var last = Lsn.Parse(Header(headers, KafkaHeaders.CommitLsn) ?? "0/0");
        var chunk = int.Parse(Header(headers, KafkaHeaders.ChunkIndex) ?? "0", CultureInfo.InvariantCulture);
        var complete = Header(headers, KafkaHeaders.LastChunk) == "true";
        var transactions = int.TryParse(Header(headers, KafkaHeaders.Transactions), NumberStyles.None, CultureInfo.InvariantCulture, out var t) ? t : -1;
        var rows = long.TryParse(Header(headers, KafkaHeaders.Rows), NumberStyles.None, CultureInfo.InvariantCulture, out var r) ? r : -1;
        var duplicate = !_seen.Add((first, chunk));
        if (duplicate)
        {
            violations.Add($"duplicate record {where}: first commit LSN {first}, chunk {chunk} again");
        }

        if (last < first)
        {
            violations.Add($"record {where} ends at commit LSN {last}, before it starts ({first})");
        }

        if (snapshotRows)
        {
            // A snapshot is one transaction per partition whose records are numbered on, each complete (docs/format.md, snapshots).
            var next = _lastWasSnapshot && first == _last ? _lastChunk + 1 : 0;
            if (!duplicate && chunk != next)
            {
                violations.Add($"record {where} is snapshot record {chunk} of the snapshot at {first}, but {next} comes next");
            }

            if (next == 0 && !_last.IsZero && first <= _last)
            {
                violations.Add($"commit LSN went backwards at {where}: the snapshot at {first} after {_last}");
            }

            if (!complete)
            {
                violations.Add($"record {where} of snapshot rows is not complete ({KafkaHeaders.LastChunk} false)");
            }

            _open = null;
            _last = last;
            _lastChunk = duplicate ? _lastChunk : chunk;
            _lastWasSnapshot = true;
            return new RecordPlace(first, last, chunk, complete, transactions, rows, duplicate);
        }

        if (_open is { } open)
        {
            if (first != open.Lsn || chunk != open.Next)
            {
                violations.Add($"record {where} starts at commit LSN {first} chunk {chunk}, but the transaction committed at {open.Lsn} needs its chunk {open.Next} next");
            }
        }
        else if (chunk != 0)
        {
            violations.Add($"record {where} starts at chunk {chunk} of the transaction committed at {first}, whose earlier chunks are not before it");
        }
        else if (!_last.IsZero && first <= _last)
        {
            violations.Add($"commit LSN went backwards at {where}: it starts at {first}, the record before ended at {_last}");
        }

        // The next piece: of the same transaction when the record holds only it, else the second of its last transaction.
        _open = complete ? null : (last, first == last ? chunk + 1 : 1);
        _last = last;
        _lastWasSnapshot = false;
        return new RecordPlace(first, last, chunk, complete, transactions, rows, duplicate);
    }

    /// <summary>After the partition's last record: the violation when a transaction's rows were left unfinished, or null.</summary>
    public string? End(string partition) =>
        _open is { } open ? $"the transaction committed at {open.Lsn} has no last chunk in partition {partition}: the topic ends after its chunk {open.Next - 1}" : null;

    private static string? Header(Headers headers, string name) =>
        headers.TryGetLastBytes(name, out var bytes) ? Encoding.UTF8.GetString(bytes) : null;
}
