using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using Apache.Arrow;
using Apache.Arrow.Types;
using WalBridge.Serialization.Payload;
using WalBridge.Serialization.Postgres;

namespace WalBridge.Serialization.Tests.Interop;

/// <summary>
/// The schema fingerprint is the SHA-256 of the schema's canonical text (docs/format.md, "Kafka headers"). The text below
/// is the one native/wal2arrow/sql/basic.sql spells out for the same table (fp_doc), so the plugin and the connector are
/// held to one definition.
/// </summary>
public class SchemaFingerprintTests
{
    private static readonly PgRelation FpDoc = new(16384, "public", "fp_doc", 'd',
    [
        new PgColumn("id", PgOid.Int4, -1, true),
        new PgColumn("tag", PgOid.Text, -1, false),
        new PgColumn("u", PgOid.Uuid, -1, false),
    ]);

    private const string FpDocCanonicalText =
        "walbridge.schema.v1\n" +
        "fields 11\n" +
        "field 3:_op utf8 not-null meta 0 children 0\n" +
        "field 4:_lsn uint64 not-null meta 0 children 0\n" +
        "field 4:_xid uint32 not-null meta 0 children 0\n" +
        "field 11:_commit_lsn uint64 not-null meta 0 children 0\n" +
        "field 10:_commit_ts timestamp[us,3:UTC] not-null meta 0 children 0\n" +
        "field 2:id int32 nullable meta 2 7:pg.type=7:integer 9:pg.typoid=2:23 children 0\n" +
        "field 3:tag utf8 nullable meta 2 7:pg.type=4:text 9:pg.typoid=2:25 children 0\n" +
        "field 1:u fixed_size_binary(16) nullable meta 4 7:pg.type=4:uuid 9:pg.typoid=4:2950 20:ARROW:extension:name=10:arrow.uuid 24:ARROW:extension:metadata=0: children 0\n" +
        "field 7:_before struct nullable meta 0 children 3\n" +
        "field 2:id int32 nullable meta 2 7:pg.type=7:integer 9:pg.typoid=2:23 children 0\n" +
        "field 3:tag utf8 nullable meta 2 7:pg.type=4:text 9:pg.typoid=2:25 children 0\n" +
        "field 1:u fixed_size_binary(16) nullable meta 4 7:pg.type=4:uuid 9:pg.typoid=4:2950 20:ARROW:extension:name=10:arrow.uuid 24:ARROW:extension:metadata=0: children 0\n" +
        "field 10:_unchanged list nullable meta 0 children 1\n" +
        "field 4:item utf8 not-null meta 0 children 0\n" +
        "field 8:_special map(keys_sorted=false) nullable meta 0 children 1\n" +
        "field 7:entries struct not-null meta 0 children 2\n" +
        "field 3:key utf8 not-null meta 0 children 0\n" +
        "field 5:value utf8 nullable meta 0 children 0\n" +
        "schema meta 5 9:pg.schema=6:public 8:pg.table=6:fp_doc 8:pg.relid=5:16384 19:pg.replica_identity=1:d 14:pg.primary_key=2:id\n";

    [Fact]
    public void The_canonical_text_is_the_documented_one_and_the_fingerprint_its_hash()
    {
        using var builder = new ChangeBatchBuilder(FpDoc);
        Assert.Equal(FpDocCanonicalText, SchemaFingerprint.CanonicalText(builder.Schema));
        var expected = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(FpDocCanonicalText)))[..16];
        Assert.Equal(expected, builder.SchemaFingerprint);
        Assert.Equal(expected, SchemaFingerprint.Compute(builder.Schema));
    }

    [Fact]
    public void The_documented_example_is_the_canonical_text_and_fingerprint_of_the_code()
    {
        var document = File.ReadAllText(DocsFormat());
        using var builder = new ChangeBatchBuilder(FpDoc);
        Assert.Contains("```\n" + SchemaFingerprint.CanonicalText(builder.Schema) + "```\n\nand its fingerprint `" + builder.SchemaFingerprint + "`", document, StringComparison.Ordinal);
    }

    /// <summary>docs/format.md of this repository.</summary>
    private static string DocsFormat()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "docs", "format.md");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        Assert.Fail($"docs/format.md not found above {AppContext.BaseDirectory}");
        return "";
    }

    [Fact]
    public void The_fingerprint_of_the_schema_Apache_Arrow_reads_back_is_the_same()
    {
        using var builder = new ChangeBatchBuilder(FpDoc);
        var output = new ArrayBufferWriter<byte>();
        builder.WriteStream(output);
        var read = ArrowPayload.Read(output.WrittenMemory);
        Assert.IsType<GuidType>(read.Schema.GetFieldByName("u").DataType); // an extension type is described by its storage
        Assert.Equal(builder.SchemaFingerprint, SchemaFingerprint.Compute(read.Schema));
        Assert.Equal(builder.SchemaFingerprint, SchemaFingerprint.Compute(ArrowSerializationHelpers.DeserializeSchema(builder.SchemaMessage)));
    }

    [Fact]
    public void Names_keys_and_values_are_length_prefixed_in_UTF8_bytes()
    {
        var schema = new Schema(
            [new Field("é 1", StringType.Default, true, [new("k", "a=b c\n")])],
            [new("ü", "")]);
        Assert.Equal(
            "walbridge.schema.v1\nfields 1\nfield 4:é 1 utf8 nullable meta 1 1:k=6:a=b c\n children 0\nschema meta 1 2:ü=0:\n",
            SchemaFingerprint.CanonicalText(schema));
    }

    [Fact]
    public void Every_part_of_the_schema_changes_the_fingerprint()
    {
        Field F(string name = "a", IArrowType? type = null, bool nullable = true, string typoid = "23") =>
            new(name, type ?? Int32Type.Default, nullable, [new("pg.typoid", typoid)]);
        Schema S(Field f, string table = "t") => new([f], [new("pg.table", table)]);
        var baseline = SchemaFingerprint.Compute(S(F()));
        Assert.Equal(baseline, SchemaFingerprint.Compute(S(F())));
        Assert.NotEqual(baseline, SchemaFingerprint.Compute(S(F(name: "b"))));
        Assert.NotEqual(baseline, SchemaFingerprint.Compute(S(F(type: Int64Type.Default))));
        Assert.NotEqual(baseline, SchemaFingerprint.Compute(S(F(nullable: false))));
        Assert.NotEqual(baseline, SchemaFingerprint.Compute(S(F(typoid: "24"))));
        Assert.NotEqual(baseline, SchemaFingerprint.Compute(S(F(), table: "u")));
        Assert.NotEqual(SchemaFingerprint.Compute(S(F(type: new Decimal128Type(10, 2)))), SchemaFingerprint.Compute(S(F(type: new Decimal128Type(10, 3)))));
        Assert.NotEqual(SchemaFingerprint.Compute(S(F(type: new TimestampType(TimeUnit.Microsecond, "UTC")))),
            SchemaFingerprint.Compute(S(F(type: new TimestampType(TimeUnit.Microsecond, (string?)null)))));
        Assert.NotEqual(SchemaFingerprint.Compute(S(F(type: new ListType(new Field("item", Int32Type.Default, true))))),
            SchemaFingerprint.Compute(S(F(type: new ListType(new Field("item", Int32Type.Default, false))))));
    }
}
