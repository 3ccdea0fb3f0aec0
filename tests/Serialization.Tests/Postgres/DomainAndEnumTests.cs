using System.Buffers;
using System.Text;
using Apache.Arrow;
using Apache.Arrow.Types;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;
using WalBridge.Tests;

namespace WalBridge.Serialization.Tests.Postgres;

/// <summary>
/// Non-built-in types named by pgoutput's Type message (<see cref="PgColumn.TypeName"/> = "namespace.name"): a domain
/// arrives with its own OID and its base type's name (e.g. <c>pg_catalog.int4</c>) and is mapped like the base type;
/// enums (and every other type outside pg_catalog) stay <c>utf8</c> text.
/// </summary>
public class DomainAndEnumTests
{
    private const uint DomainOid = 16390;

    private static Field Field(string typeName, uint oid = DomainOid) =>
        PgTypeMapping.MapColumn(new PgColumn("v", oid, -1, false, typeName));

    public static TheoryData<string, string, string, string?> Domains() => new()
    {
        // Type message name, Arrow type, pg.type, extension
        { "pg_catalog.bool", "Boolean", "boolean", null },
        { "pg_catalog.int2", "Int16", "smallint", null },
        { "pg_catalog.int4", "Int32", "integer", null },
        { "pg_catalog.int8", "Int64", "bigint", null },
        { "pg_catalog.oid", "UInt32", "oid", null },
        { "pg_catalog.float4", "Float32", "real", null },
        { "pg_catalog.float8", "Float64", "double precision", null },
        { "pg_catalog.numeric", "Utf8", "numeric", null },
        { "pg_catalog.text", "Utf8", "text", null },
        { "pg_catalog.varchar", "Utf8", "character varying", null },
        { "pg_catalog.bpchar", "Utf8", "bpchar", null },
        { "pg_catalog.bytea", "Binary", "bytea", null },
        { "pg_catalog.date", "Date32", "date", null },
        { "pg_catalog.timestamp", "Timestamp(us)", "timestamp without time zone", null },
        { "pg_catalog.timestamptz", "Timestamp(us, UTC)", "timestamp with time zone", null },
        { "pg_catalog.time", "Time64(us)", "time without time zone", null },
        { "pg_catalog.interval", "Interval(MonthDayNano)", "interval", null },
        { "pg_catalog.uuid", "FixedSizeBinary(16)", "uuid", "arrow.uuid" },
        { "pg_catalog.json", "Utf8", "json", "arrow.json" },
        { "pg_catalog.jsonb", "Utf8", "jsonb", "arrow.json" },
        { "pg_catalog._int4", "List<Int32>", "integer[]", null },
        { "pg_catalog._text", "List<Utf8>", "text[]", null },
        { "pg_catalog.inet", "Utf8", "inet", null },
        { "pg_catalog.timetz", "Utf8", "time with time zone", null },
        { "pg_catalog.money", "Utf8", "money", null },
    };

    private static string Describe(Field f) => f.DataType switch
    {
        TimestampType t => t.Timezone is null ? "Timestamp(us)" : $"Timestamp(us, {t.Timezone})",
        Time64Type t => $"Time64({(t.Unit == TimeUnit.Microsecond ? "us" : t.Unit.ToString())})",
        IntervalType t => $"Interval({(t.Unit == IntervalUnit.MonthDayNanosecond ? "MonthDayNano" : t.Unit.ToString())})",
        FixedSizeBinaryType t => $"FixedSizeBinary({t.ByteWidth})",
        ListType => $"List<{Describe(f.Children()[0])}>",
        BooleanType => "Boolean",
        Int16Type => "Int16",
        Int32Type => "Int32",
        Int64Type => "Int64",
        UInt32Type => "UInt32",
        FloatType => "Float32",
        DoubleType => "Float64",
        StringType => "Utf8",
        BinaryType => "Binary",
        Date32Type => "Date32",
        _ => f.DataType.Name,
    };

    [Theory]
    [MemberData(nameof(Domains))]
    public void A_domain_over_a_built_in_type_maps_like_its_base_type_and_keeps_its_own_OID(string typeName, string arrow, string pgType, string? extension)
    {
        var field = Field(typeName);
        Assert.Equal(arrow, Describe(field));
        Assert.Equal(pgType, field.GetMetadata("pg.type"));
        Assert.Equal("16390", field.GetMetadata("pg.typoid"));
        Assert.Equal(extension, field.GetMetadata("ARROW:extension:name"));
    }

    [Fact]
    public void A_domain_over_an_array_has_list_elements_of_the_base_element_type()
    {
        var field = Field("pg_catalog._timestamptz");
        Assert.Equal("timestamp with time zone[]", field.GetMetadata("pg.type"));
        Assert.Equal("16390", field.GetMetadata("pg.typoid"));
        var item = Assert.Single(field.Children());
        Assert.Equal("timestamp with time zone", item.GetMetadata("pg.type"));
        Assert.Equal("1184", item.GetMetadata("pg.typoid"));
    }

    [Theory]
    [InlineData("public.mood")]          // an enum
    [InlineData("public.int4")]          // a user type that merely shares a built-in's name
    [InlineData("public._mood")]         // an array of an enum
    [InlineData("myschema.compfoo")]     // a composite type
    [InlineData("pg_catalog.no_such")]   // an unknown base: text, never a guess
    public void Enums_and_other_non_built_in_types_are_utf8_text_named_by_the_type_message(string typeName)
    {
        var field = Field(typeName);
        Assert.IsType<StringType>(field.DataType);
        Assert.Equal(typeName, field.GetMetadata("pg.type"));
        Assert.Equal("16390", field.GetMetadata("pg.typoid"));
        Assert.Null(field.GetMetadata("ARROW:extension:name"));
    }

    [Fact]
    public void The_empty_namespace_pgoutput_writes_for_pg_catalog_is_understood()
    {
        var field = Field(".int8");
        Assert.IsType<Int64Type>(field.DataType);
        Assert.Equal("bigint", field.GetMetadata("pg.type"));
    }

    [Fact]
    public void A_built_in_OID_is_never_remapped_by_a_name()
    {
        var field = Field("pg_catalog.int4", PgOid.Text);
        Assert.IsType<StringType>(field.DataType);
        Assert.Equal("text", field.GetMetadata("pg.type"));
        Assert.Equal("25", field.GetMetadata("pg.typoid"));
    }

    private static readonly PgRelation Table = new(16400, "public", "typed", 'd',
    [
        new PgColumn("id", PgOid.Int4, -1, true),
        new PgColumn("qty", 16391, -1, false, "pg_catalog.int4"),          // CREATE DOMAIN positive AS int4 CHECK (VALUE > 0)
        new PgColumn("label", 16392, -1, false, "pg_catalog.text"),        // CREATE DOMAIN label AS text
        new PgColumn("price", 16393, -1, false, "pg_catalog.numeric"),     // CREATE DOMAIN price AS numeric(10,2): typmod not sent
        new PgColumn("at", 16394, -1, false, "pg_catalog.timestamptz"),
        new PgColumn("ids", 16395, -1, false, "pg_catalog._int4"),
        new PgColumn("mood", 16396, -1, false, "public.mood"),              // CREATE TYPE mood AS ENUM (...)
    ]);

    private static ArrowPayload Write(ChangeBatchBuilder builder)
    {
        var output = new ArrayBufferWriter<byte>();
        builder.WriteStream(output);
        return ArrowPayload.Read(output.WrittenMemory.ToArray());
    }

    [Theory]
    [InlineData(TupleFormat.Text)]
    [InlineData(TupleFormat.Binary)]
    public void Domain_values_are_parsed_like_their_base_type_and_enum_values_are_labels(TupleFormat format)
    {
        using var b = new ChangeBatchBuilder(Table);
        b.BeginRow(ChangeOp.Insert, 1);
        b.AppendValue("1"u8, TupleFormat.Text);
        if (format == TupleFormat.Text)
        {
            b.AppendValue("42"u8, format);
            b.AppendValue("héllo 😀"u8, format);
            b.AppendValue("12.50"u8, format);
            b.AppendValue("2024-02-03 04:05:06.5+00"u8, format);
            b.AppendValue("{1,NULL,-3}"u8, format);
        }
        else
        {
            b.AppendValue([0, 0, 0, 42], format);
            b.AppendValue("héllo 😀"u8, format);
            // numeric send format of 12.50: ndigits 2, weight 0, sign +, dscale 2, digits 12 5000
            b.AppendValue(Convert.FromHexString("0002000000000002000c1388"), format);
            // 2024-02-03 04:05:06.5 UTC in microseconds since 2000-01-01
            b.AppendValue(Convert.FromHexString("0002B3711A4001A0"), format);
            b.AppendValue(Convert.FromHexString("00000001000000010000001700000003000000010000000400000001ffffffff00000004fffffffd"), format);
        }

        b.AppendValue(Encoding.UTF8.GetBytes("happy"), TupleFormat.Text); // enums are replicated in text format
        b.EndRow();
        var batch = Assert.Single(Write(b).Batches);
        Assert.Equal(42, ((Int32Array)batch.Column("qty")).Values[0]);
        Assert.Equal("héllo 😀", ((StringArray)batch.Column("label")).GetString(0));
        Assert.Equal("12.50", ((StringArray)batch.Column("price")).GetString(0));
        Assert.Equal("2024-02-03 04:05:06.5+00", PgTextRenderer.RenderCell(batch, batch.Schema.IndexOf("at"), 0));
        Assert.Equal(new object?[] { 1, null, -3 }, (object?[])batch.Column("ids").Value(0)!);
        Assert.Equal("happy", ((StringArray)batch.Column("mood")).GetString(0));
        Assert.Equal("public.mood", batch.Schema.GetFieldByIndex(batch.Schema.IndexOf("mood")).GetMetadata("pg.type"));
    }

    [Fact]
    public void A_domain_value_its_base_type_rejects_is_a_format_error_not_text()
    {
        using var b = new ChangeBatchBuilder(Table);
        b.BeginRow(ChangeOp.Insert, 1);
        b.AppendValue("1"u8, TupleFormat.Text);
        var e = Assert.Throws<PgValueFormatException>(() => b.AppendValue("forty-two"u8, TupleFormat.Text));
        Assert.Contains("'qty'", e.Message, StringComparison.Ordinal);
        Assert.Contains("integer", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_schema_fingerprint_tells_a_domain_from_its_base_type()
    {
        using var domain = new ChangeBatchBuilder(new PgRelation(1, "public", "t", 'd', [new PgColumn("v", 16391, -1, false, "pg_catalog.int4")]));
        using var plain = new ChangeBatchBuilder(new PgRelation(1, "public", "t", 'd', [new PgColumn("v", PgOid.Int4, -1, false)]));
        Assert.Equal(SchemaFingerprint.CanonicalText(new Schema([plain.Schema.GetFieldByIndex(2)], null)).Replace("2:23", "5:16391", StringComparison.Ordinal),
            SchemaFingerprint.CanonicalText(new Schema([domain.Schema.GetFieldByIndex(2)], null)));
        Assert.NotEqual(plain.SchemaFingerprint, domain.SchemaFingerprint);
    }
}
