using Avro;

namespace WalBridge.SchemaRegistry;

/// <summary>
/// Avro schema resolution (the Avro specification's rules) as compatibility checks: BACKWARD means data written with
/// the old schema can be read with the new one. Returns the reasons a reader cannot read a writer (empty: compatible).
/// Thread-safe (stateless).
/// </summary>
public static class AvroCompatibility
{
    public static List<string> CanRead(Schema reader, Schema writer)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(writer);
        var problems = new List<string>();
        Check(reader, writer, "", problems, []);
        return problems;
    }

    private static Schema Base(Schema schema) => schema is LogicalSchema logical ? logical.BaseSchema : schema;

    private static void Check(Schema reader, Schema writer, string path, List<string> problems, HashSet<(Schema, Schema)> seen)
    {
        reader = Base(reader);
        writer = Base(writer);
        if (!seen.Add((reader, writer)))
        {
            return;
        }

        if (writer is UnionSchema writerUnion)
        {
            foreach (var branch in writerUnion.Schemas)
            {
                var branchProblems = new List<string>();
                Check(reader, branch, path, branchProblems, seen);
                problems.AddRange(branchProblems);
            }
            return;
        }
        if (reader is UnionSchema readerUnion)
        {
            foreach (var branch in readerUnion.Schemas)
            {
                var branchProblems = new List<string>();
                Check(branch, writer, path, branchProblems, [.. seen]);
                if (branchProblems.Count == 0)
                {
                    return;
                }
            }
            problems.Add($"{Where(path)}: the reader's union has no branch for the writer's {writer.Tag}");
            return;
        }

        switch (reader.Tag)
        {
            case Schema.Type.Record when writer is RecordSchema w && reader is RecordSchema r:
                if (!NameMatches(r, w))
                {
                    problems.Add($"{Where(path)}: record name {r.Fullname} does not match the writer's {w.Fullname}");
                    return;
                }
                foreach (var field in r.Fields)
                {
                    var writerField = w.Fields.FirstOrDefault(f => f.Name == field.Name || (field.Aliases?.Contains(f.Name) ?? false));
                    if (writerField is null)
                    {
                        if (field.DefaultValue is null)
                        {
                            problems.Add($"{Where(path)}: reader field '{field.Name}' is missing in the writer's schema and has no default");
                        }

                        continue;
                    }
                    Check(field.Schema, writerField.Schema, $"{path}/{field.Name}", problems, seen);
                }
                return;
            case Schema.Type.Enumeration when writer is EnumSchema w && reader is EnumSchema r:
                if (!NameMatches(r, w))
                {
                    problems.Add($"{Where(path)}: enum name {r.Fullname} does not match the writer's {w.Fullname}");
                }

                var missing = w.Symbols.Where(s => !r.Symbols.Contains(s)).ToList();
                if (missing.Count > 0 && r.Default is null)
                {
                    problems.Add($"{Where(path)}: the reader's enum lacks the writer's symbols {string.Join(", ", missing)}");
                }

                return;
            case Schema.Type.Array when writer is ArraySchema w && reader is ArraySchema r:
                Check(r.ItemSchema, w.ItemSchema, path + "/items", problems, seen);
                return;
            case Schema.Type.Map when writer is MapSchema w && reader is MapSchema r:
                Check(r.ValueSchema, w.ValueSchema, path + "/values", problems, seen);
                return;
            case Schema.Type.Fixed when writer is FixedSchema w && reader is FixedSchema r:
                if (r.Size != w.Size || !NameMatches(r, w))
                {
                    problems.Add($"{Where(path)}: fixed {r.Fullname}({r.Size}) cannot read fixed {w.Fullname}({w.Size})");
                }

                return;
        }

        if (reader.Tag == writer.Tag && reader.Tag is not (Schema.Type.Record or Schema.Type.Enumeration or Schema.Type.Array or Schema.Type.Map or Schema.Type.Fixed))
        {
            return;
        }

        var promoted = (writer.Tag, reader.Tag) switch
        {
            (Schema.Type.Int, Schema.Type.Long or Schema.Type.Float or Schema.Type.Double) => true,
            (Schema.Type.Long, Schema.Type.Float or Schema.Type.Double) => true,
            (Schema.Type.Float, Schema.Type.Double) => true,
            (Schema.Type.String, Schema.Type.Bytes) => true,
            (Schema.Type.Bytes, Schema.Type.String) => true,
            _ => false,
        };
        if (!promoted)
        {
            problems.Add($"{Where(path)}: the reader's {reader.Tag} cannot read the writer's {writer.Tag}");
        }
    }

    private static bool NameMatches(NamedSchema reader, NamedSchema writer) =>
        reader.Fullname == writer.Fullname || reader.Name == writer.Name;

    private static string Where(string path) => path.Length == 0 ? "/" : path;
}
