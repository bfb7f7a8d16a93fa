import json, sys, re, collections
import count_ops
doc,_ = count_ops.load(sys.argv[1])
paths = doc.get('paths') or {}
# template shape collisions
shapes = collections.defaultdict(list)
for p in paths: shapes[re.sub(r'\{[^}]*\}', '{}', p)].append(p)
coll = {k:v for k,v in shapes.items() if len(v)>1}
print('paths sharing a template shape:', len(coll), list(coll.items())[:3])
# literal vs template overlaps at same depth (e.g. /a/b and /a/{x})
segs = [p.strip('/').split('/') for p in paths]
print('segments with partial templates (e.g. {a}.{b} or x{y}):', sorted({s for p in segs for s in p if '{' in s and not re.fullmatch(r'\{[^}]+\}', s)})[:10])
print('max path depth', max(len(s) for s in segs))
# schema reference cycles among components/schemas
schemas = (doc.get('components') or {}).get('schemas') or {}
def refs_of(v, out):
    if isinstance(v, dict):
        r = v.get('$ref')
        if isinstance(r, str) and r.startswith('#/components/schemas/'): out.add(r.split('/')[-1])
        for x in v.values(): refs_of(x, out)
    elif isinstance(v, list):
        for x in v: refs_of(x, out)
graph = {}
for n, s in schemas.items():
    o=set(); refs_of(s,o); graph[n]=o
# Tarjan-free: find nodes on cycles via DFS
sys.setrecursionlimit(100000)
color={}; cyc=set(); stack=[]
def dfs(n):
    color[n]=1; stack.append(n)
    for m in graph.get(n,()):
        if color.get(m)==1: cyc.update(stack[stack.index(m):])
        elif m not in color: dfs(m)
    stack.pop(); color[n]=2
for n in graph:
    if n not in color: dfs(n)
print('schemas on $ref cycles:', len(cyc), sorted(cyc)[:8])
# $ref with siblings
sib=collections.Counter()
def w(v):
    if isinstance(v, dict):
        if '$ref' in v and len(v)>1: sib[tuple(sorted(k for k in v if k!='$ref'))]+=1
        for x in v.values(): w(x)
    elif isinstance(v, list):
        for x in v: w(x)
w(doc); print('$ref with sibling keys:', sib.most_common(5))
# header params names, cookie params, params with content, required body
print('security schemes:', {k:v.get('type')+('/'+v.get('in','') if v.get('in') else '') for k,v in ((doc.get('components') or {}).get('securitySchemes') or {}).items()})
print('servers:', [s.get('url') for s in doc.get('servers',[])][:3])
