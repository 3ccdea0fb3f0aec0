using System.Globalization;
using Apache.Arrow;
using Apache.Arrow.Types;

namespace WalBridge.Serialization.Postgres;

/// <summary>Built-in PostgreSQL type OIDs (pg_type.dat).</summary>
public static class PgOid
{
    public const uint Bool = 16;
    public const uint Bytea = 17;
    public const uint Char = 18;
    public const uint Name = 19;
    public const uint Int8 = 20;
    public const uint Int2 = 21;
    public const uint Int4 = 23;
    public const uint Text = 25;
    public const uint Oid = 26;
    public const uint Json = 114;
    public const uint Xml = 142;
    public const uint Float4 = 700;
    public const uint Float8 = 701;
    public const uint Money = 790;
    public const uint Bpchar = 1042;
    public const uint Varchar = 1043;
    public const uint Date = 1082;
    public const uint Time = 1083;
    public const uint Timestamp = 1114;
    public const uint TimestampTz = 1184;
    public const uint Interval = 1186;
    public const uint TimeTz = 1266;
    public const uint Bit = 1560;
    public const uint VarBit = 1562;
    public const uint Numeric = 1700;
    public const uint Uuid = 2950;
    public const uint Jsonb = 3802;
    public const uint BoolArray = 1000;
    public const uint Int2Array = 1005;
    public const uint Int4Array = 1007;
    public const uint TextArray = 1009;
    public const uint Int8Array = 1016;
    public const uint Float8Array = 1022;
    public const uint TimestampTzArray = 1185;
    public const uint NumericArray = 1231;
    public const uint UuidArray = 2951;
}

/// <summary>How values of a column are converted (chosen from the type OID, the type modifier and the Arrow type).</summary>
internal enum PgValueKind
{
    Bool,
    Int16,
    Int32,
    Int64,
    Oid,
    Float32,
    Float64,
    Decimal,
    NumericText,
    Text,
    Bytea,
    Date,
    Timestamp,
    TimestampTz,
    Time,
    Interval,
    Uuid,
    Json,
    Jsonb,
    FallbackText,
    Array,
}

/// <summary>The Arrow representation chosen for one PostgreSQL column type.</summary>
internal sealed record PgColumnType(PgValueKind Kind, IArrowType ArrowType, string PgTypeName, uint TypeOid, string? ExtensionName, PgColumnType? Element = null)
{
    /// <summary>Decimal scale for <see cref="PgValueKind.Decimal"/> (read on the value path: computed once).</summary>
    public int Scale { get; } = ArrowType switch
    {
        Decimal128Type d => d.Scale,
        Decimal256Type d => d.Scale,
        _ => 0,
    };

    /// <summary>Decimal precision for <see cref="PgValueKind.Decimal"/>.</summary>
    public int Precision { get; } = ArrowType switch
    {
        Decimal128Type d => d.Precision,
        Decimal256Type d => d.Precision,
        _ => 0,
    };

    /// <summary>
    /// The nullable Apache.Arrow field of a column of this type: metadata <c>pg.type</c>, <c>pg.typoid</c>, then for
    /// canonical extension types <c>ARROW:extension:name</c> and an empty <c>ARROW:extension:metadata</c>, in that order.
    /// An array type's <see cref="ArrowType"/> is the list of its element's field (<c>item</c>, with the element's own
    /// metadata). The field keeps the extension's storage type (e.g. <c>fixed_size_binary(16)</c> for <c>arrow.uuid</c>); readers
    /// that register the extension (see <c>ArrowPayload</c>) see the extension type.
    /// </summary>
    public Field CreateField(string name)
    {
        var metadata = new List<KeyValuePair<string, string>>(4)
        {
            new(PgTypeMapping.TypeKey, PgTypeName),
            new(PgTypeMapping.TypeOidKey, TypeOid.ToString(CultureInfo.InvariantCulture)),
        };
        if (ExtensionName is not null)
        {
            metadata.Add(new(PgTypeMapping.ExtensionNameKey, ExtensionName));
            metadata.Add(new(PgTypeMapping.ExtensionMetadataKey, ""));
        }

        return new Field(name, ArrowType, nullable: true, metadata);
    }
}

/// <summary>PostgreSQL → Arrow type mapping (see docs/format.md for the table).</summary>
public static class PgTypeMapping
{
    /// <summary>Field metadata key holding the PostgreSQL type in format_type style, e.g. <c>numeric(12,2)</c>.</summary>
    public const string TypeKey = "pg.type";

    /// <summary>Field metadata key holding the type OID (decimal).</summary>
    public const string TypeOidKey = "pg.typoid";

    /// <summary>Field metadata key naming a canonical Arrow extension type (<c>arrow.uuid</c>, <c>arrow.json</c>).</summary>
    public const string ExtensionNameKey = "ARROW:extension:name";

    /// <summary>Field metadata key of the extension's serialized metadata (empty for <c>arrow.uuid</c> and <c>arrow.json</c>).</summary>
    public const string ExtensionMetadataKey = "ARROW:extension:metadata";

    private const int VarHdrSz = 4;

    /// <summary>The Apache.Arrow field a table column maps to (nullable, with <c>pg.type</c>/<c>pg.typoid</c> metadata).</summary>
    public static Field MapColumn(PgColumn column)
    {
        ArgumentNullException.ThrowIfNull(column);
        return Resolve(column).CreateField(column.Name);
    }

    /// <summary>
    /// Whether a value of <paramref name="column"/>'s type arrives exactly in pgoutput's binary
    /// tuple format (<c>binary 'true'</c>): true for every type with its own Arrow mapping and arrays
    /// of them; false for types kept as PostgreSQL's text (enums, inet, geometric, …), whose binary
    /// send format the builder does not turn back into text.
    /// </summary>
    public static bool SupportsBinary(PgColumn column)
    {
        ArgumentNullException.ThrowIfNull(column);
        var type = Resolve(column);
        while (type.Kind == PgValueKind.Array && type.Element is not null)
        {
            type = type.Element;
        }

        return type.Kind != PgValueKind.FallbackText;
    }

    internal static PgColumnType Resolve(PgColumn column)
    {
        var oid = column.TypeOid;
        var typmod = column.TypeModifier;
        if (DomainBaseOid(oid, column.TypeName) is uint baseOid)
        {
            // A domain over a built-in type: mapped (type, pg.type, parsing) like its base type without a type
            // modifier (pgoutput sends neither the domain's typmod nor the column's); pg.typoid stays the domain's OID.
            return Resolve(new PgColumn(column.Name, baseOid, -1, column.IsKey)) with { TypeOid = oid };
        }

        var name = FormatType(oid, typmod, column.TypeName);
        var elementOid = ArrayElementOid(oid);
        if (elementOid != 0)
        {
            var element = Resolve(new PgColumn("item", elementOid, typmod, false));
            return new(PgValueKind.Array, new ListType(element.CreateField("item")), name, oid, null, element);
        }

        return oid switch
        {
            PgOid.Bool => new(PgValueKind.Bool, BooleanType.Default, name, oid, null),
            PgOid.Int2 => new(PgValueKind.Int16, Int16Type.Default, name, oid, null),
            PgOid.Int4 => new(PgValueKind.Int32, Int32Type.Default, name, oid, null),
            PgOid.Int8 => new(PgValueKind.Int64, Int64Type.Default, name, oid, null),
            PgOid.Oid => new(PgValueKind.Oid, UInt32Type.Default, name, oid, null),
            PgOid.Float4 => new(PgValueKind.Float32, FloatType.Default, name, oid, null),
            PgOid.Float8 => new(PgValueKind.Float64, DoubleType.Default, name, oid, null),
            PgOid.Numeric => ResolveNumeric(typmod, name),
            PgOid.Text or PgOid.Varchar or PgOid.Bpchar or PgOid.Name => new(PgValueKind.Text, StringType.Default, name, oid, null),
            PgOid.Bytea => new(PgValueKind.Bytea, BinaryType.Default, name, oid, null),
            PgOid.Date => new(PgValueKind.Date, Date32Type.Default, name, oid, null),
            PgOid.Timestamp => new(PgValueKind.Timestamp, new TimestampType(TimeUnit.Microsecond, (string?)null), name, oid, null),
            PgOid.TimestampTz => new(PgValueKind.TimestampTz, new TimestampType(TimeUnit.Microsecond, "UTC"), name, oid, null),
            PgOid.Time => new(PgValueKind.Time, new Time64Type(TimeUnit.Microsecond), name, oid, null),
            PgOid.Interval => new(PgValueKind.Interval, new IntervalType(IntervalUnit.MonthDayNanosecond), name, oid, null),
            PgOid.Uuid => new(PgValueKind.Uuid, new FixedSizeBinaryType(16), name, oid, "arrow.uuid"),
            PgOid.Json => new(PgValueKind.Json, StringType.Default, name, oid, "arrow.json"),
            PgOid.Jsonb => new(PgValueKind.Jsonb, StringType.Default, name, oid, "arrow.json"),
            _ => new(PgValueKind.FallbackText, StringType.Default, name, oid, null),
        };
    }

    private static PgColumnType ResolveNumeric(int typmod, string name)
    {
        if (typmod >= VarHdrSz)
        {
            var precision = ((typmod - VarHdrSz) >> 16) & 0xFFFF;
            var scale = (((typmod - VarHdrSz) & 0x7FF) ^ 1024) - 1024; // PostgreSQL 15+ allows negative scales
            if (precision >= 1 && scale >= 0 && scale <= precision && precision <= 76)
            {
                IArrowType type = precision <= 38 ? new Decimal128Type(precision, scale) : new Decimal256Type(precision, scale);
                return new(PgValueKind.Decimal, type, name, PgOid.Numeric, null);
            }
        }

        // Unconstrained numeric (or a scale Arrow decimals cannot express): exact text.
        return new(PgValueKind.NumericText, StringType.Default, name, PgOid.Numeric, null);
    }

    /// <summary>First OID of objects that are not built in (<c>FirstGenbkiObjectId</c>); pgoutput sends Type messages only for such types.</summary>
    private const uint FirstNonBuiltinOid = 10000;

    /// <summary>
    /// The base type OID of a domain over a built-in type, from the name pgoutput's Type message gave for a non-built-in
    /// type OID: for a domain PostgreSQL sends the domain's OID with its (ultimate) base type's namespace and name, e.g.
    /// <c>pg_catalog.int4</c>, or <c>pg_catalog._int4</c> for a domain over <c>integer[]</c>. Null for built-in OIDs,
    /// for types outside <c>pg_catalog</c> (enums, composite and extension types, domains over them) and for names not
    /// known here. pgoutput itself writes an empty namespace for pg_catalog (<c>logicalrep_write_namespace</c>), so
    /// <c>.int4</c> is accepted as <c>pg_catalog.int4</c>.
    /// </summary>
    internal static uint? DomainBaseOid(uint oid, string? typeName)
    {
        const string Catalog = "pg_catalog.";
        if (oid < FirstNonBuiltinOid || typeName is null)
        {
            return null;
        }

        var start = typeName.StartsWith(Catalog, StringComparison.Ordinal) ? Catalog.Length : typeName.StartsWith('.') ? 1 : -1;
        if (start < 0)
        {
            return null;
        }

        var baseOid = BuiltinOidByName(typeName.AsSpan(start));
        return baseOid == 0 ? null : baseOid;
    }

    /// <summary>The OID of a built-in type by its <c>pg_type.typname</c> (arrays with their <c>_</c> prefix), or 0 when not known here.</summary>
    internal static uint BuiltinOidByName(ReadOnlySpan<char> typname) => typname switch
    {
        "bool" => PgOid.Bool,
        "bytea" => PgOid.Bytea,
        "char" => PgOid.Char,
        "name" => PgOid.Name,
        "int8" => PgOid.Int8,
        "int2" => PgOid.Int2,
        "int4" => PgOid.Int4,
        "text" => PgOid.Text,
        "oid" => PgOid.Oid,
        "json" => PgOid.Json,
        "xml" => PgOid.Xml,
        "float4" => PgOid.Float4,
        "float8" => PgOid.Float8,
        "money" => PgOid.Money,
        "bpchar" => PgOid.Bpchar,
        "varchar" => PgOid.Varchar,
        "date" => PgOid.Date,
        "time" => PgOid.Time,
        "timestamp" => PgOid.Timestamp,
        "timestamptz" => PgOid.TimestampTz,
        "interval" => PgOid.Interval,
        "timetz" => PgOid.TimeTz,
        "bit" => PgOid.Bit,
        "varbit" => PgOid.VarBit,
        "numeric" => PgOid.Numeric,
        "uuid" => PgOid.Uuid,
        "jsonb" => PgOid.Jsonb,
        "point" => 600,
        "lseg" => 601,
        "path" => 602,
        "box" => 603,
        "polygon" => 604,
        "line" => 628,
        "cidr" => 650,
        "circle" => 718,
        "macaddr8" => 774,
        "macaddr" => 829,
        "inet" => 869,
        "pg_lsn" => 3220,
        "tsvector" => 3614,
        "tsquery" => 3615,
        "int4range" => 3904,
        "numrange" => 3906,
        "tsrange" => 3908,
        "tstzrange" => 3910,
        "daterange" => 3912,
        "int8range" => 3926,
        "_bool" => 1000,
        "_bytea" => 1001,
        "_name" => 1003,
        "_int2" => 1005,
        "_int4" => 1007,
        "_text" => 1009,
        "_bpchar" => 1014,
        "_varchar" => 1015,
        "_int8" => 1016,
        "_float4" => 1021,
        "_float8" => 1022,
        "_oid" => 1028,
        "_timestamp" => 1115,
        "_date" => 1182,
        "_time" => 1183,
        "_timestamptz" => 1185,
        "_interval" => 1187,
        "_numeric" => 1231,
        "_json" => 199,
        "_uuid" => 2951,
        "_jsonb" => 3807,
        _ => 0,
    };

    /// <summary>The element type OID of the one-dimensional array types mapped to <c>list&lt;T&gt;</c>, or 0.</summary>
    internal static uint ArrayElementOid(uint arrayOid) => arrayOid switch
    {
        1000 => PgOid.Bool,
        1001 => PgOid.Bytea,
        1003 => PgOid.Name,
        1005 => PgOid.Int2,
        1007 => PgOid.Int4,
        1009 => PgOid.Text,
        1014 => PgOid.Bpchar,
        1015 => PgOid.Varchar,
        1016 => PgOid.Int8,
        1021 => PgOid.Float4,
        1022 => PgOid.Float8,
        1028 => PgOid.Oid,
        1115 => PgOid.Timestamp,
        1182 => PgOid.Date,
        1183 => PgOid.Time,
        1185 => PgOid.TimestampTz,
        1187 => PgOid.Interval,
        1231 => PgOid.Numeric,
        199 => PgOid.Json,
        2951 => PgOid.Uuid,
        3807 => PgOid.Jsonb,
        _ => 0,
    };

    /// <summary>The type's name as PostgreSQL's <c>format_type(oid, typmod)</c> prints it (for the types known here).</summary>
    public static string FormatType(uint oid, int typmod, string? fallbackName = null)
    {
        var elementOid = ArrayElementOid(oid);
        if (elementOid != 0)
        {
            return FormatType(elementOid, typmod) + "[]";
        }

        string P(string baseName) => typmod >= 0 ? $"{baseName}({typmod})" : baseName;
        return oid switch
        {
            PgOid.Bool => "boolean",
            PgOid.Bytea => "bytea",
            PgOid.Char => "\"char\"",
            PgOid.Name => "name",
            PgOid.Int8 => "bigint",
            PgOid.Int2 => "smallint",
            PgOid.Int4 => "integer",
            PgOid.Text => "text",
            PgOid.Oid => "oid",
            PgOid.Json => "json",
            PgOid.Xml => "xml",
            PgOid.Float4 => "real",
            PgOid.Float8 => "double precision",
            PgOid.Money => "money",
            PgOid.Bpchar => typmod >= VarHdrSz ? $"character({typmod - VarHdrSz})" : "bpchar",
            PgOid.Varchar => typmod >= VarHdrSz ? $"character varying({typmod - VarHdrSz})" : "character varying",
            PgOid.Date => "date",
            PgOid.Time => P("time") + " without time zone",
            PgOid.TimeTz => P("time") + " with time zone",
            PgOid.Timestamp => P("timestamp") + " without time zone",
            PgOid.TimestampTz => P("timestamp") + " with time zone",
            PgOid.Interval => "interval" + IntervalTypmod(typmod),
            PgOid.Bit => typmod >= 0 ? $"bit({typmod})" : "bit",
            PgOid.VarBit => typmod >= 0 ? $"bit varying({typmod})" : "bit varying",
            PgOid.Numeric => typmod >= VarHdrSz
                ? $"numeric({((typmod - VarHdrSz) >> 16) & 0xFFFF},{(((typmod - VarHdrSz) & 0x7FF) ^ 1024) - 1024})"
                : "numeric",
            PgOid.Uuid => "uuid",
            PgOid.Jsonb => "jsonb",
            _ => fallbackName ?? WellKnownName(oid) ?? $"oid {oid.ToString(CultureInfo.InvariantCulture)}",
        };
    }

    private static string? WellKnownName(uint oid) => oid switch
    {
        22 => "int2vector",
        24 => "regproc",
        27 => "tid",
        28 => "xid",
        29 => "cid",
        30 => "oidvector",
        600 => "point",
        601 => "lseg",
        602 => "path",
        603 => "box",
        604 => "polygon",
        628 => "line",
        650 => "cidr",
        718 => "circle",
        774 => "macaddr8",
        829 => "macaddr",
        869 => "inet",
        2205 => "regclass",
        3220 => "pg_lsn",
        3614 => "tsvector",
        3615 => "tsquery",
        3904 => "int4range",
        3906 => "numrange",
        3908 => "tsrange",
        3910 => "tstzrange",
        3912 => "daterange",
        3926 => "int8range",
        4451 => "int4multirange",
        5038 => "pg_snapshot",
        // Arrays of the types above and of other built-in types that are not mapped to list<T> (utf8 text).
        1002 => "\"char\"[]",
        1017 => "point[]",
        1040 => "macaddr[]",
        1041 => "inet[]",
        651 => "cidr[]",
        143 => "xml[]",
        791 => "money[]",
        1270 => "time with time zone[]",
        1561 => "bit[]",
        1563 => "bit varying[]",
        3643 => "tsvector[]",
        3905 => "int4range[]",
        _ => null,
    };

    private static string IntervalTypmod(int typmod)
    {
        if (typmod < 0)
        {
            return "";
        }

        var fields = (typmod >> 16) & 0x7FFF;
        var precision = typmod & 0xFFFF;
        const int Year = 1 << 2, Month = 1 << 1, Day = 1 << 3, Hour = 1 << 10, Minute = 1 << 11, Second = 1 << 12;
        var f = fields switch
        {
            Year => " year",
            Month => " month",
            Day => " day",
            Hour => " hour",
            Minute => " minute",
            Second => " second",
            Year | Month => " year to month",
            Day | Hour => " day to hour",
            Day | Hour | Minute => " day to minute",
            Day | Hour | Minute | Second => " day to second",
            Hour | Minute => " hour to minute",
            Hour | Minute | Second => " hour to second",
            Minute | Second => " minute to second",
            _ => "",
        };
        return precision != 0xFFFF ? $"{f}({precision})" : f;
    }
}
