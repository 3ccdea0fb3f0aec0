using System.Buffers;
using System.Collections;
using Apache.Arrow;
using Apache.Arrow.Compression;
using Apache.Arrow.Ipc;
using Confluent.Kafka;

namespace WalBridge.Client;

/// <summary>
/// One WalBridge table record (docs/format.md, payload format 2): the Apache.Arrow schema and record batches of its Arrow
/// IPC stream, its Kafka header metadata, and its rows as typed <see cref="Change"/>s, in commit order.
/// </summary>
/// <remarks>
/// <para><b>Lifetime.</b> The arrays of uncompressed batches are zero-copy views of the value's bytes; batches whose body
/// was compressed (<c>arrow.compression</c>) are decompressed into Apache.Arrow's native memory. The record owns all of
/// it: whoever holds the record disposes it, once nothing reads its batches, arrays or <see cref="Change"/>s any more.
/// From <see cref="WalBridgeDeserializer"/> the bytes are a pooled copy that <see cref="Dispose"/> returns to the pool,
/// so a batch kept past <see cref="Dispose"/> would show another record's bytes: use after disposal throws
/// <see cref="ObjectDisposedException"/> through this type and its <see cref="Change"/>s, but a <see cref="RecordBatch"/>
/// or array taken out of it cannot check. Confluent.Kafka never disposes deserialized values itself. Not disposing
/// a record only loses the pooling (the memory is then collected).</para>
/// <para><b>Threads.</b> A record is immutable: any number of threads may read it (and its changes) at the same time.
/// <see cref="Dispose"/> must not race with readers.</para>
/// </remarks>
public sealed class WalBridgeRecord : IDisposable
{
    private static readonly ArrowContext s_context = CreateContext();
    private readonly ChangeBatch[] _batches;
    private readonly List<RecordBatch> _recordBatches;
    private byte[]? _pooled;
    private bool _disposed;

    private WalBridgeRecord(ReadOnlyMemory<byte> value, byte[]? pooled, WalBridgeRecordHeaders? headers)
    {
        _pooled = pooled;
        Headers = headers;
        if (value.IsEmpty)
        {
            throw new WalBridgeFormatException("The record value is empty: a WalBridge table record is an Arrow IPC stream (a null value is no table record).");
        }

        var batches = new List<RecordBatch>(1);
        try
        {
            using var reader = new ArrowStreamReader(s_context, value);
            Schema = reader.Schema ?? throw new WalBridgeFormatException("The record value is not an Arrow IPC stream: it has no schema message.");
            while (reader.ReadNextRecordBatch() is { } batch)
            {
                batches.Add(batch);
            }
        }
        catch (Exception e) when (e is not (WalBridgeFormatException or OutOfMemoryException))
        {
            DisposeAll(batches);
            throw new WalBridgeFormatException($"The record value ({value.Length} bytes) is not a valid Arrow IPC stream: {e.GetType().Name}: {e.Message}", e);
        }

        try
        {
            string? schemaName = null, tableName = null;
            _ = Schema.Metadata?.TryGetValue("pg.schema", out schemaName);
            _ = Schema.Metadata?.TryGetValue("pg.table", out tableName);
            Table = headers?.Table ?? $"{schemaName}.{tableName}";
            var layout = ColumnLayout.For(Schema);
            _batches = [.. batches.Select(b => new ChangeBatch(this, layout, b))];
            Layout = layout;
            _recordBatches = batches;
            Count = batches.Sum(b => b.Length);
            if (headers is not null && headers.Rows != Count)
            {
                throw new WalBridgeFormatException($"The record of {Table} says walbridge.rows = {headers.Rows}, but its Arrow stream holds {Count} rows.");
            }
        }
        catch
        {
            DisposeAll(batches);
            throw;
        }
    }

    /// <summary>The record's headers; null when it was read without them (<see cref="Read(ReadOnlyMemory{byte})"/>).</summary>
    public WalBridgeRecordHeaders? Headers { get; }

    /// <summary><c>schema.table</c> (the <c>pg.table</c> header, else the schema's <c>pg.schema</c> and <c>pg.table</c> metadata).</summary>
    public string Table { get; }

    /// <summary>The record's one Arrow schema, with WalBridge's metadata (<c>pg.primary_key</c>, <c>pg.relid</c>, …).</summary>
    public Schema Schema { get; }

    /// <summary>The record batches, in order. Owned by the record: do not dispose them; do not use them after <see cref="Dispose"/>.</summary>
    public IReadOnlyList<RecordBatch> Batches
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _recordBatches;
        }
    }

    /// <summary>The table's column names in this record's schema, in attribute order.</summary>
    public IReadOnlyList<string> ColumnNames => Layout.Names;

    /// <summary>The replica identity key columns (<c>pg.primary_key</c>); empty when the table has none.</summary>
    public IReadOnlyList<string> PrimaryKey =>
        Schema.Metadata is { } metadata && metadata.TryGetValue("pg.primary_key", out var key) && key.Length > 0 ? key.Split(',') : [];

    /// <summary>The rows of all batches.</summary>
    public int Count { get; }

    internal ColumnLayout Layout { get; }

    internal bool IsDisposed => _disposed;

    /// <summary>
    /// Reads a record value, checking its headers first (<see cref="WalBridgeRecordHeaders.Parse"/>: an unknown payload
    /// format is a <see cref="WalBridgeFormatException"/>). Zero-copy: the record's arrays are views of
    /// <paramref name="value"/>, which must stay unchanged while the record is used.
    /// </summary>
    public static WalBridgeRecord Read(ReadOnlyMemory<byte> value, Headers headers) => new(value, null, WalBridgeRecordHeaders.Parse(headers));

    /// <summary>Reads a record value without its headers (<see cref="Headers"/> is then null; nothing checks the format version). Zero-copy, as above.</summary>
    public static WalBridgeRecord Read(ReadOnlyMemory<byte> value) => new(value, null, null);

    /// <summary>Reads a copy of <paramref name="value"/> in a pooled buffer that <see cref="Dispose"/> returns.</summary>
    internal static WalBridgeRecord ReadCopy(ReadOnlySpan<byte> value, WalBridgeRecordHeaders headers)
    {
        var pooled = ArrayPool<byte>.Shared.Rent(value.Length);
        value.CopyTo(pooled);
        try
        {
            return new WalBridgeRecord(pooled.AsMemory(0, value.Length), pooled, headers);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(pooled);
            throw;
        }
    }

    /// <summary>The record's changes in order (all batches); <c>foreach</c> over it allocates nothing.</summary>
    public ChangeCollection Changes
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return new ChangeCollection(_batches, Count);
        }
    }

    /// <summary>Releases the batches and returns the pooled bytes; the record, its batches and its changes are unusable afterwards.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (var batch in _batches)
        {
            batch.Batch.Dispose();
        }

        if (_pooled is { } pooled)
        {
            _pooled = null;
            ArrayPool<byte>.Shared.Return(pooled);
        }
    }

    private static void DisposeAll(List<RecordBatch> batches)
    {
        foreach (var batch in batches)
        {
            batch.Dispose();
        }
    }

    private static ArrowContext CreateContext()
    {
        var registry = new ExtensionTypeRegistry();
        registry.Register(GuidExtensionDefinition.Instance);   // uuid columns as GuidArray
        return new ArrowContext(compressionCodecFactory: new CompressionCodecFactory(), extensionRegistry: registry);
    }

    /// <summary>The changes of a record, in order.</summary>
    public readonly struct ChangeCollection : IReadOnlyCollection<Change>
    {
        private readonly ChangeBatch[] _batches;

        internal ChangeCollection(ChangeBatch[] batches, int count)
        {
            _batches = batches;
            Count = count;
        }

        public int Count { get; }

        public ChangeEnumerator GetEnumerator() => new(_batches);

        IEnumerator<Change> IEnumerable<Change>.GetEnumerator() => GetEnumerator();

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>Enumerates the changes of a record, batch after batch; a struct, so a <c>foreach</c> allocates nothing.</summary>
    public struct ChangeEnumerator : IEnumerator<Change>
    {
        private readonly ChangeBatch[] _batches;
        private int _batch;
        private int _row;

        internal ChangeEnumerator(ChangeBatch[] batches)
        {
            _batches = batches;
            _batch = 0;
            _row = -1;
        }

        public readonly Change Current => new(_batches[_batch], _row);

        readonly object IEnumerator.Current => Current;

        public bool MoveNext()
        {
            while (_batch < _batches.Length)
            {
                if (++_row < _batches[_batch].Batch.Length)
                {
                    return true;
                }

                _batch++;
                _row = -1;
            }

            return false;
        }

        public void Reset()
        {
            _batch = 0;
            _row = -1;
        }

        public readonly void Dispose()
        {
        }
    }
}
