import json, sys
import count_ops
doc,_=count_ops.load(sys.argv[1])
S=(doc.get('components') or {}).get('schemas') or {}
def refs(v,out):
    if isinstance(v,dict):
        r=v.get('$ref')
        if isinstance(r,str) and r.startswith('#/components/schemas/'): out.add(r.split('/')[-1])
        for k,x in v.items():
            if k in ('example','examples','default','enum','const'): continue
            refs(x,out)
    elif isinstance(v,list):
        for x in v: refs(x,out)
def closure(v):
    seen=set(); todo=set(); refs(v,todo)
    while todo:
        n=todo.pop()
        if n in seen: continue
        seen.add(n); nxt=set(); refs(S.get(n,{}),nxt); todo|=nxt-seen
    return seen
tot=0; uni=set(); bodies=0; nodes=0
def size(v):
    if isinstance(v,dict): return 1+sum(size(x) for x in v.values())
    if isinstance(v,list): return 1+sum(size(x) for x in v)
    return 1
for p,item in doc['paths'].items():
    for m,op in item.items():
        if m not in count_ops.METHODS: continue
        rb=count_ops.deref(doc, op.get('requestBody')) if op.get('requestBody') else None
        if not rb: continue
        for mt,media in (rb.get('content') or {}).items():
            if 'json' not in mt or 'schema' not in media: continue
            bodies+=1; c=closure(media['schema']); tot+=len(c); uni|=c
            nodes+=size(media['schema'])+sum(size(S[n]) for n in c)
print(f"{sys.argv[1]}: JSON request bodies {bodies}; component schemas reached: sum over bodies {tot}, distinct {len(uni)} of {len(S)}; JSON nodes compiled if each body compiled separately: {nodes}")
