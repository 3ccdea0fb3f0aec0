namespace WalBridge.Connector.Formats.Debezium;

/// <summary>
/// Writes one Kafka Connect value, depth first, in an encoding (JSON, Avro binary). Every value call names the schema it
/// is written for, so an encoding that needs it (Avro's union branch of an optional value) can use it. Not thread-safe;
/// one writer per encoding thread, reused after <see cref="Reset"/>.
/// </summary>
internal interface IConnectWriter
{
    /// <summary>Forgets everything written; the next value starts a new record.</summary>
    void Reset();

    void Null(ConnectSchema schema);
    void Boolean(ConnectSchema schema, bool value);
    /// <summary>INT8, INT16, INT32 or INT64.</summary>
    void Integer(ConnectSchema schema, long value);
    void Float32(ConnectSchema schema, float value);
    void Float64(ConnectSchema schema, double value);
    void String(ConnectSchema schema, ReadOnlySpan<byte> utf8);
    void String(ConnectSchema schema, string value);
    void Bytes(ConnectSchema schema, ReadOnlySpan<byte> value);

    void BeginStruct(ConnectSchema schema);
    /// <summary>Starts the value of <paramref name="field"/> (fields come in schema order, each exactly once).</summary>
    void Field(ConnectField field);
    void EndStruct();

    void BeginArray(ConnectSchema schema, int count);
    void EndArray();

    void BeginMap(ConnectSchema schema, int count);
    void MapKey(string key);
    void EndMap();
}
