
ô
routesé2æ
4*2

namehealth

match*

path	/health
P*N

nameusers
;
match2*0

path/users

methods2
GET
POST
]*[

nameuser
I
match@*>

path/users/{id}
%
methods2
GET
PUT
DELETE
D*B

nameposts
/
match&*$
"
path/users/{id}/posts/{post}
7*5

namestatic
!
match*

prefix
/static/