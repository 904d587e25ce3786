// Submit a code task (CodeRun) or a docs task (DocsRun). The browser does not validate: the
// API's problem+json `errors` are shown next to the fields they name.
import { useState } from "preact/hooks";
import { ApiError, api, type FieldError } from "../api.js";
import { href } from "../router.js";
import { ErrorNote } from "../ui.js";

interface FieldSpec {
  name: string;
  label: string;
  type?: "text" | "number" | "checkbox" | "textarea" | "url";
  required?: boolean;
  hint?: string;
}

const CODE_FIELDS: FieldSpec[] = [
  { name: "task_id", label: "Task id", type: "number", required: true, hint: "Task Master task id" },
  { name: "service", label: "Service", required: true, hint: "Selects the workspace volume workspace-{service}" },
  { name: "repository_url", label: "Repository URL", required: true, hint: "Where the agent pushes code (https://…, git@…, or org/repo)" },
  { name: "docs_repository_url", label: "Docs repository URL", required: true },
  { name: "docs_project_directory", label: "Docs project directory" },
  { name: "working_directory", label: "Working directory", hint: "Default: the service name" },
  { name: "github_user", label: "GitHub user", hint: "Exactly one of GitHub user or GitHub App" },
  { name: "github_app", label: "GitHub App" },
  { name: "model", label: "Model", hint: "Default from the controller config" },
  { name: "docs_branch", label: "Docs branch", hint: "Default main" },
  { name: "max_turns", label: "Max turns", type: "number" },
  { name: "timeout_seconds", label: "Timeout (seconds)", type: "number" },
  { name: "max_retries", label: "Max retries", type: "number" },
  { name: "prompt_modification", label: "Extra instructions", type: "textarea" },
  { name: "continue_session", label: "Continue the previous session", type: "checkbox" },
];

const DOCS_FIELDS: FieldSpec[] = [
  { name: "repository_url", label: "Repository URL", required: true, hint: "Repository containing the Task Master project" },
  { name: "working_directory", label: "Working directory", required: true, hint: "Directory containing .taskmaster/ ('.' = root)" },
  { name: "source_branch", label: "Source branch", required: true, hint: "Cloned; the docs PR targets it" },
  { name: "github_user", label: "GitHub user", hint: "Exactly one of GitHub user or GitHub App" },
  { name: "github_app", label: "GitHub App" },
  { name: "model", label: "Model", hint: "Default from the controller config" },
  { name: "max_turns", label: "Max turns", type: "number" },
  { name: "include_codebase", label: "Include the codebase", type: "checkbox" },
];

/** The request body: empty fields left out, numbers as numbers (anything else is sent as typed, for the API to judge). */
export function buildBody(fields: FieldSpec[], values: Record<string, string | boolean>): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const f of fields) {
    const v = values[f.name];
    if (f.type === "checkbox") {
      if (v === true) body[f.name] = true;
    } else if (typeof v === "string" && v.trim() !== "") {
      const t = v.trim();
      body[f.name] = f.type === "number" && /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : t;
    }
  }
  return body;
}

function Field({
  f,
  form,
  value,
  error,
  onChange,
}: {
  f: FieldSpec;
  form: string;
  value: string | boolean | undefined;
  error?: string;
  onChange: (v: string | boolean) => void;
}) {
  const id = `${form}-${f.name}`;
  const described = [f.hint ? `${id}-hint` : "", error ? `${id}-error` : ""].filter(Boolean).join(" ") || undefined;
  const common = {
    id,
    name: f.name,
    "aria-invalid": error ? ("true" as const) : undefined,
    "aria-describedby": described,
    "aria-required": f.required ? ("true" as const) : undefined,
  };
  return (
    <div class={`field${f.type === "checkbox" ? " check" : ""}`}>
      {f.type === "checkbox" ? (
        <input type="checkbox" {...common} checked={value === true} onChange={(e) => onChange((e.target as HTMLInputElement).checked)} />
      ) : null}
      <label for={id}>
        {f.label}
        {f.required ? <span aria-hidden="true"> *</span> : null}
      </label>
      {f.type === "textarea" ? (
        <textarea {...common} rows={3} value={(value as string) ?? ""} onInput={(e) => onChange((e.target as HTMLTextAreaElement).value)} />
      ) : f.type === "checkbox" ? null : (
        <input
          type="text"
          inputMode={f.type === "number" ? "numeric" : undefined}
          {...common}
          value={(value as string) ?? ""}
          onInput={(e) => onChange((e.target as HTMLInputElement).value)}
        />
      )}
      {f.hint ? (
        <small id={`${id}-hint`} class="muted">
          {f.hint}
        </small>
      ) : null}
      {error ? (
        <small id={`${id}-error`} class="field-error">
          {error}
        </small>
      ) : null}
    </div>
  );
}

const topField = (e: FieldError) => e.field.split(".")[0] ?? e.field;

/** Submission state: the API's field errors, the created run, an Idempotency-Key per attempt. */
function useSubmission(kind: "code" | "docs", form: string) {
  const [errors, setErrors] = useState<FieldError[]>([]);
  const [failure, setFailure] = useState<unknown>(null);
  const [created, setCreated] = useState<{ kind: string; name: string } | null>(null);
  const [key, setKey] = useState(() => crypto.randomUUID());
  const [busy, setBusy] = useState(false);
  const submit = async (body: Record<string, unknown>) => {
    setBusy(true);
    setErrors([]);
    setFailure(null);
    setCreated(null);
    try {
      if (kind === "code") setCreated({ kind: "CodeRun", name: (await api.submitCode(body, key)).coderun_name });
      else setCreated({ kind: "DocsRun", name: (await api.submitDocs(body, key)).docsrun_name });
      setKey(crypto.randomUUID());
    } catch (err) {
      setFailure(err);
      if (err instanceof ApiError && err.problem.errors?.length) {
        setErrors(err.problem.errors);
        // Keyboard and screen-reader users land on the first field the API named.
        const first = err.problem.errors.map((x) => document.getElementById(`${form}-${topField(x)}`)).find(Boolean);
        setTimeout(() => first?.focus(), 0);
      }
    } finally {
      setBusy(false);
    }
  };
  return { errors, failure, created, busy, submit };
}

function TaskForm({ kind, fields }: { kind: "code" | "docs"; fields: FieldSpec[] }) {
  const [values, setValues] = useState<Record<string, string | boolean>>({});
  const form = `${kind}-form`;
  const { errors, failure, created, busy, submit: send } = useSubmission(kind, form);
  const byField = new Map(errors.map((e) => [topField(e), e.message]));
  const unplaced = errors.filter((e) => !fields.some((f) => f.name === topField(e)));
  const submit = (e: Event) => {
    e.preventDefault();
    void send(buildBody(fields, values));
  };
  return (
    <form id={form} class="card submit-form" onSubmit={submit} noValidate aria-labelledby={`${form}-title`}>
      <h2 id={`${form}-title`}>{kind === "code" ? "Code task (CodeRun)" : "Docs task (DocsRun)"}</h2>
      <p class="muted">Fields marked * are required.</p>
      <div class="fields">
        {fields.map((f) => (
          <Field
            key={f.name}
            f={f}
            form={form}
            value={values[f.name]}
            error={byField.get(f.name)}
            onChange={(v) => setValues({ ...values, [f.name]: v })}
          />
        ))}
      </div>
      <div role="status" aria-live="polite">
        {created ? (
          <p class="note success">
            Submitted {created.kind} <a href={href(["runs", created.kind, created.name])}>{created.name}</a>.
          </p>
        ) : null}
      </div>
      <ErrorNote error={failure} />
      {unplaced.length ? (
        <ul class="field-error">
          {unplaced.map((e) => (
            <li key={e.field}>
              {e.field}: {e.message}
            </li>
          ))}
        </ul>
      ) : null}
      <div class="actions">
        <button type="submit" disabled={busy}>
          {busy ? "Submitting…" : kind === "code" ? "Submit code task" : "Submit docs task"}
        </button>
      </div>
    </form>
  );
}

export function SubmitPage({ query }: { query: URLSearchParams }) {
  const tab = query.get("kind") === "docs" ? "docs" : "code";
  return (
    <>
      <h1 tabIndex={-1}>Submit a task</h1>
      <nav aria-label="Task kind" class="tabs">
        <a href={href(["submit"], { kind: "code" })} aria-current={tab === "code" ? "page" : undefined}>
          Code task
        </a>
        <a href={href(["submit"], { kind: "docs" })} aria-current={tab === "docs" ? "page" : undefined}>
          Docs task
        </a>
      </nav>
      {tab === "code" ? <TaskForm key="code" kind="code" fields={CODE_FIELDS} /> : <TaskForm key="docs" kind="docs" fields={DOCS_FIELDS} />}
    </>
  );
}
