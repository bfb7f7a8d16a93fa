#!/usr/bin/env python3
"""Count operations and survey features of OpenAPI documents (JSON or YAML)."""
import json, sys, os, collections, hashlib
METHODS = {"get","put","post","delete","options","head","patch","trace"}

def load(p):
    with open(p, "rb") as f: data = f.read()
    if p.endswith((".yaml", ".yml")):
        import yaml
        try: loader = yaml.CSafeLoader
        except AttributeError: loader = yaml.SafeLoader
        return yaml.load(data, Loader=loader), data
    return json.loads(data), data

def walk(v, fn, path=()):
    fn(v, path)
    if isinstance(v, dict):
        for k, x in v.items(): walk(x, fn, path + (k,))
    elif isinstance(v, list):
        for i, x in enumerate(v): walk(x, fn, path + (i,))

def deref(doc, v):
    seen = 0
    while isinstance(v, dict) and "$ref" in v and seen < 20:
        r = v["$ref"]
        if not r.startswith("#/"): return v
        t = doc
        for part in r[2:].split("/"):
            t = t[part.replace("~1", "/").replace("~0", "~")]
        v = t; seen += 1
    return v

def survey(p):
    doc, raw = load(p)
    ver = doc.get("openapi") or doc.get("swagger")
    paths = doc.get("paths") or {}
    ops = 0; methods = collections.Counter(); templated = 0
    styles = collections.Counter(); p_in = collections.Counter()
    media = collections.Counter(); param_content = 0
    for path, item in paths.items():
        item = deref(doc, item)
        if "{" in path: templated += 1
        common = item.get("parameters", [])
        for m, op in item.items():
            if m not in METHODS: continue
            ops += 1; methods[m] += 1
            for prm in list(common) + list(op.get("parameters", [])):
                prm = deref(doc, prm)
                loc = prm.get("in"); p_in[loc] += 1
                if "content" in prm: param_content += 1
                default_style = {"query":"form","cookie":"form","path":"simple","header":"simple"}.get(loc)
                st = prm.get("style", default_style)
                ex = prm.get("explode", st == "form")
                sch = deref(doc, prm.get("schema", {})) if isinstance(prm.get("schema"), dict) else {}
                t = sch.get("type")
                t = "/".join(t) if isinstance(t, list) else t
                styles[(loc, st, ex, t if t in ("array","object") else "scalar")] += 1
            rb = op.get("requestBody")
            if rb:
                rb = deref(doc, rb)
                for mt in (rb.get("content") or {}): media[mt] += 1
    refs = collections.Counter(); ext_refs = []
    kw = collections.Counter()
    def fn(v, path):
        if isinstance(v, dict):
            r = v.get("$ref")
            if isinstance(r, str):
                if r.startswith("#"): refs[r.split("/")[1] + "/" + (r.split("/")[2] if r.count("/") > 1 else "")] += 1
                else: ext_refs.append(r)
            for k in ("nullable","discriminator","readOnly","writeOnly","example","examples","exclusiveMinimum","exclusiveMaximum","allOf","oneOf","anyOf","not","additionalProperties","patternProperties","$defs","const","prefixItems","unevaluatedProperties","if","$schema","$id","$anchor","$dynamicRef","format","pattern","xml","contentEncoding","contentMediaType"):
                if k in v and not (len(path) and path[-1] in ("properties",)):
                    kw[k] += 1
            if isinstance(v.get("type"), list): kw["type[]"] += 1
            if isinstance(v.get("exclusiveMinimum"), bool) or isinstance(v.get("exclusiveMaximum"), bool): kw["exclusiveMin/Max:bool"] += 1
            if v.get("type") == "null" or (isinstance(v.get("type"), list) and "null" in v["type"]): kw["type:null"] += 1
    walk(doc, fn)
    comps = {k: len(v) for k, v in (doc.get("components") or {}).items()}
    return dict(file=p, size=len(raw), sha256=hashlib.sha256(raw).hexdigest(), openapi=ver,
                jsonSchemaDialect=doc.get("jsonSchemaDialect"), paths=len(paths), templated_paths=templated,
                operations=ops, methods=dict(methods), webhooks=len(doc.get("webhooks") or {}),
                components=comps, param_in=dict(p_in), param_content=param_content,
                styles={f"{a}|{b}|explode={c}|{d}": n for (a,b,c,d), n in styles.most_common()},
                request_media=dict(media.most_common(15)), local_ref_targets=dict(refs.most_common(12)),
                external_refs=len(ext_refs), external_ref_examples=sorted(set(ext_refs))[:5],
                keywords=dict(kw.most_common()))

if __name__ == "__main__":
    for p in sys.argv[1:]:
        print(json.dumps(survey(p), indent=1, default=str))
