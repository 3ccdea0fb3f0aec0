namespace WalBridge.Serialization.Postgres;

/// <summary>
/// One column of a replicated relation, as described by pgoutput's Relation message.
/// </summary>
/// <param name="Name">Column name.</param>
/// <param name="TypeOid">The column's type OID (<c>pg_type.oid</c>).</param>
/// <param name="TypeModifier">The type modifier (<c>atttypmod</c>), -1 when none.</param>
/// <param name="IsKey">Whether the column is part of the replica identity (pgoutput's key flag).</param>
/// <param name="TypeName">
/// For a non-built-in type (OID 10000 and above): <c>namespace.name</c> from pgoutput's Type message, e.g.
/// <c>public.mood</c> for an enum. For a domain PostgreSQL sends its (ultimate) base type's name, e.g.
/// <c>pg_catalog.int4</c>: a domain over a built-in type is then mapped like that base type (without a type
/// modifier, which pgoutput does not send). Otherwise the name is used for the <c>pg.type</c> field metadata of
/// the <c>utf8</c> text column.
/// </param>
public sealed record PgColumn(string Name, uint TypeOid, int TypeModifier, bool IsKey, string? TypeName = null);

/// <summary>A replicated relation (table) as described by pgoutput's Relation message.</summary>
/// <param name="RelationId">The relation OID.</param>
/// <param name="Schema">Namespace (schema) name.</param>
/// <param name="Table">Relation name.</param>
/// <param name="ReplicaIdentity">Replica identity setting: <c>d</c> default, <c>n</c> nothing, <c>f</c> full, <c>i</c> index.</param>
/// <param name="Columns">Columns in attribute order (dropped and generated columns excluded, as pgoutput sends them).</param>
public sealed record PgRelation(uint RelationId, string Schema, string Table, char ReplicaIdentity, IReadOnlyList<PgColumn> Columns);

/// <summary>A table's <c>REPLICA IDENTITY</c>: pgoutput's Relation message byte (<c>pg_class.relreplident</c>).</summary>
public enum ReplicaIdentity : byte
{
    Default = (byte)'d',
    Nothing = (byte)'n',
    Full = (byte)'f',
    Index = (byte)'i',
}

/// <summary>Kind of change, stored in the <c>_op</c> column as a one-letter string (Debezium's letters).</summary>
public enum ChangeOp : byte
{
    Insert = (byte)'c',
    Update = (byte)'u',
    Delete = (byte)'d',
    Read = (byte)'r',
    /// <summary>The table was truncated at this point (a row with every table column null).</summary>
    Truncate = (byte)'t',
}

/// <summary>Encoding of one value in pgoutput tuple data.</summary>
public enum TupleFormat
{
    /// <summary>Kind <c>t</c>: the type's text output (UTF-8).</summary>
    Text,

    /// <summary>Kind <c>b</c>: the type's binary send format (big-endian).</summary>
    Binary,
}
