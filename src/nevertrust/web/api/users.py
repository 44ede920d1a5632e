"""/api/v1/users and /api/v1/groups."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from nevertrust.app import Services
from nevertrust.identity import GroupRecord, UserRecord
from nevertrust.web.api._deps import Admin, current_admin, services

__all__ = ["router"]

router = APIRouter(tags=["identity"])


class UserOut(BaseModel):
    name: str
    display_name: str
    email: str
    enabled: bool
    has_password: bool
    groups: list[str]
    created_at: datetime

    @classmethod
    def of(cls, user: UserRecord) -> UserOut:
        return cls(
            name=user.name,
            display_name=user.display_name,
            email=user.email,
            enabled=user.enabled,
            has_password=user.password_hash is not None,
            groups=list(user.groups),
            created_at=user.created_at,
        )


class UserIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str | None = Field(default=None, max_length=1024)
    display_name: str = Field(default="", max_length=200)
    email: str = Field(default="", max_length=320)


class GroupOut(BaseModel):
    name: str
    description: str
    members: list[str]

    @classmethod
    def of(cls, group: GroupRecord) -> GroupOut:
        return cls(name=group.name, description=group.description, members=list(group.members))


class GroupIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    description: str = Field(default="", max_length=500)


class MemberIn(BaseModel):
    user: str = Field(min_length=1, max_length=64)


class Changed(BaseModel):
    changed: bool


@router.get("/users", response_model=list[UserOut])
def list_users(
    svc: Services = Depends(services), _: Admin = Depends(current_admin)
) -> list[UserOut]:
    return [UserOut.of(u) for u in svc.directory.list_users()]


@router.post("/users", response_model=UserOut, status_code=201)
def add_user(
    body: UserIn,
    svc: Services = Depends(services),
    admin: Admin = Depends(current_admin),
) -> UserOut:
    user = svc.directory.add_user(
        body.name,
        actor=admin.actor,
        password=body.password,
        display_name=body.display_name,
        email=body.email,
    )
    return UserOut.of(user)


@router.get("/users/{name}", response_model=UserOut)
def get_user(
    name: str, svc: Services = Depends(services), _: Admin = Depends(current_admin)
) -> UserOut:
    return UserOut.of(svc.directory.get_user(name))


@router.post("/users/{name}/disable", response_model=UserOut)
def disable_user(
    name: str,
    svc: Services = Depends(services),
    admin: Admin = Depends(current_admin),
) -> UserOut:
    return UserOut.of(svc.directory.set_enabled(name, False, actor=admin.actor))


@router.post("/users/{name}/enable", response_model=UserOut)
def enable_user(
    name: str,
    svc: Services = Depends(services),
    admin: Admin = Depends(current_admin),
) -> UserOut:
    return UserOut.of(svc.directory.set_enabled(name, True, actor=admin.actor))


@router.get("/groups", response_model=list[GroupOut])
def list_groups(
    svc: Services = Depends(services), _: Admin = Depends(current_admin)
) -> list[GroupOut]:
    return [GroupOut.of(g) for g in svc.directory.list_groups()]


@router.post("/groups", response_model=GroupOut, status_code=201)
def add_group(
    body: GroupIn,
    svc: Services = Depends(services),
    admin: Admin = Depends(current_admin),
) -> GroupOut:
    return GroupOut.of(
        svc.directory.add_group(body.name, actor=admin.actor, description=body.description)
    )


@router.post("/groups/{group}/members", response_model=Changed)
def add_member(
    group: str,
    body: MemberIn,
    svc: Services = Depends(services),
    admin: Admin = Depends(current_admin),
) -> Changed:
    return Changed(changed=svc.directory.set_membership(group, body.user, True, actor=admin.actor))


@router.delete("/groups/{group}/members/{user}", response_model=Changed)
def remove_member(
    group: str,
    user: str,
    svc: Services = Depends(services),
    admin: Admin = Depends(current_admin),
) -> Changed:
    return Changed(changed=svc.directory.set_membership(group, user, False, actor=admin.actor))
