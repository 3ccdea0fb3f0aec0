using System.Text.Json;
using Avro;

namespace WalBridge.SchemaRegistry;

/// <summary>One registered version of a subject.</summary>
public sealed record SubjectVersion(string Subject, int Version, int Id, string Schema);

/// <summary>The outcome of a registration: the id, or the registry's error (HTTP status, error code, message).</summary>
public sealed record Outcome(int Status, int ErrorCode, string Message, int Id = 0);

/// <summary>
/// The registry's state: schemas by id (one id per distinct schema text, shared between subjects), subjects' versions,
/// compatibility levels (global default BACKWARD). Optionally persisted to a JSON file after every change, so a
/// restarted registry keeps its ids. Thread-safe (one lock).
/// </summary>
public sealed class RegistryStore(string? stateFile)
{
    public static readonly string[] Levels = ["NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE"];

    private readonly Lock _lock = new();
    private readonly State _state = Load(stateFile);

    public sealed class State
    {
        public Dictionary<int, string> Schemas { get; set; } = [];
        public Dictionary<string, List<SubjectVersion>> Subjects { get; set; } = [];
        public Dictionary<string, string> Compatibility { get; set; } = [];
        public string GlobalCompatibility { get; set; } = "BACKWARD";
    }

    private static State Load(string? file) =>
        file is not null && File.Exists(file) ? JsonSerializer.Deserialize<State>(File.ReadAllText(file)) ?? new State() : new State();

    private void Save()
    {
        if (stateFile is not null)
        {
            var temporary = stateFile + ".tmp";
            File.WriteAllText(temporary, JsonSerializer.Serialize(_state));
            File.Move(temporary, stateFile, overwrite: true);
        }
    }

    public Outcome Register(string subject, string schemaText)
    {
        Schema parsed;
        try
        {
            parsed = Schema.Parse(schemaText);
        }
        catch (Exception e) when (e is SchemaParseException or AvroException or Newtonsoft.Json.JsonException)
        {
            return new Outcome(422, 42201, $"Invalid schema: {e.Message}");
        }

        lock (_lock)
        {
            var versions = _state.Subjects.GetValueOrDefault(subject) ?? [];
            var existing = versions.FirstOrDefault(v => Same(v.Schema, schemaText));
            if (existing is not null)
            {
                return new Outcome(200, 0, "", existing.Id);
            }

            var problems = CompatibilityProblems(subject, parsed, versions, null);
            if (problems.Count > 0)
            {
                var latest = versions[^1];
                return new Outcome(409, 409,
                    $"Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{string.Join("; ", problems)}] (version {latest.Version}, {Level(subject)})");
            }

            var id = _state.Schemas.FirstOrDefault(kv => Same(kv.Value, schemaText)).Key;
            if (id == 0)
            {
                id = _state.Schemas.Count == 0 ? 1 : _state.Schemas.Keys.Max() + 1;
                _state.Schemas[id] = schemaText;
            }
            versions.Add(new SubjectVersion(subject, versions.Count == 0 ? 1 : versions[^1].Version + 1, id, schemaText));
            _state.Subjects[subject] = versions;
            Save();
            return new Outcome(200, 0, "", id);
        }
    }

    /// <summary>Reasons <paramref name="schema"/> may not follow the subject's versions (or only <paramref name="version"/>) under its compatibility level.</summary>
    public List<string> CompatibilityProblems(string subject, Schema schema, IReadOnlyList<SubjectVersion>? versions, int? version)
    {
        lock (_lock)
        {
            versions ??= _state.Subjects.GetValueOrDefault(subject) ?? [];
            if (versions.Count == 0)
            {
                return [];
            }

            var level = Level(subject);
            if (level == "NONE")
            {
                return [];
            }

            var against = version is { } v ? versions.Where(x => x.Version == v).ToList()
                : level.EndsWith("_TRANSITIVE", StringComparison.Ordinal) ? versions.ToList() : [versions[^1]];
            var problems = new List<string>();
            foreach (var old in against)
            {
                var oldSchema = Schema.Parse(old.Schema);
                if (level.StartsWith("BACKWARD", StringComparison.Ordinal) || level.StartsWith("FULL", StringComparison.Ordinal))
                {
                    problems.AddRange(AvroCompatibility.CanRead(schema, oldSchema).Select(p => $"BACKWARD against version {old.Version}: {p}"));
                }

                if (level.StartsWith("FORWARD", StringComparison.Ordinal) || level.StartsWith("FULL", StringComparison.Ordinal))
                {
                    problems.AddRange(AvroCompatibility.CanRead(oldSchema, schema).Select(p => $"FORWARD against version {old.Version}: {p}"));
                }
            }
            return problems;
        }
    }

    public SubjectVersion? Lookup(string subject, string schemaText)
    {
        lock (_lock)
        {
            return (_state.Subjects.GetValueOrDefault(subject) ?? []).FirstOrDefault(v => Same(v.Schema, schemaText));
        }
    }

    public string? SchemaById(int id)
    {
        lock (_lock)
        {
            return _state.Schemas.GetValueOrDefault(id);
        }
    }

    public IReadOnlyList<SubjectVersion>? Versions(string subject)
    {
        lock (_lock)
        {
            return _state.Subjects.TryGetValue(subject, out var list) ? [.. list] : null;
        }
    }

    public IReadOnlyList<string> SubjectNames()
    {
        lock (_lock)
        {
            return [.. _state.Subjects.Keys.Order(StringComparer.Ordinal)];
        }
    }

    public IReadOnlyList<int>? Delete(string subject)
    {
        lock (_lock)
        {
            if (!_state.Subjects.Remove(subject, out var list))
            {
                return null;
            }

            _state.Compatibility.Remove(subject);
            Save();
            return [.. list.Select(v => v.Version)];
        }
    }

    public string Level(string? subject)
    {
        lock (_lock)
        {
            return subject is not null && _state.Compatibility.TryGetValue(subject, out var level) ? level : _state.GlobalCompatibility;
        }
    }

    public string? SubjectLevel(string subject)
    {
        lock (_lock)
        {
            return _state.Compatibility.GetValueOrDefault(subject);
        }
    }

    public void SetLevel(string? subject, string level)
    {
        lock (_lock)
        {
            if (subject is null)
            {
                _state.GlobalCompatibility = level;
            }
            else
            {
                _state.Compatibility[subject] = level;
            }

            Save();
        }
    }

    /// <summary>Two schema texts are the same schema when Avro's parsing gives the same canonical form.</summary>
    private static bool Same(string a, string b)
    {
        if (a == b)
        {
            return true;
        }

        try
        {
            return Schema.Parse(a).ToString() == Schema.Parse(b).ToString();
        }
        catch (SchemaParseException)
        {
            return false;
        }
    }
}
